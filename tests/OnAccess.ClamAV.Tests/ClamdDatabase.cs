using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace OnAccess.ClamAV.Tests;

/// <summary>
/// Signature databases clamd reports a version for. clamd's VERSION carries the version and build time of the
/// <c>daily</c> database only (a bare .hdb gives plain <c>ClamAV 1.4.6</c>), so a test that needs VERSION to change
/// writes <c>daily.cud</c>: an unsigned CVD as <c>sigtool --build=daily.cud --unsigned</c> makes it, a 512-byte header
/// (<c>ClamAV-VDB:time:version:signatures:level:md5:X:builder:seconds</c>) and a gzipped tar of COPYING, daily.info and
/// daily.hdb. No internet, no signing key.
/// </summary>
internal static class ClamdDatabase
{
    private const int FunctionalityLevel = 90; // old enough for any clamd that reads .cud

    /// <summary>Writes <paramref name="directory"/>/daily.cud (replacing it atomically) with version <paramref name="version"/> and the given .hdb lines.</summary>
    public static void WriteDaily(string directory, int version, IReadOnlyList<string> hdbLines)
    {
        var now = DateTimeOffset.UtcNow;
        var header = string.Join(':', "ClamAV-VDB", now.ToString("dd MMM yyyy HH-mm", CultureInfo.InvariantCulture) + " +0000", version, hdbLines.Count, FunctionalityLevel);
        var seconds = now.ToUnixTimeSeconds();
        var hdb = Encoding.ASCII.GetBytes(string.Join('\n', hdbLines) + "\n");
        var info = Encoding.ASCII.GetBytes($"{header}:X:X:onaccess-tests:{seconds}\ndaily.hdb:{hdb.Length}:{Convert.ToHexStringLower(SHA256.HashData(hdb))}\n");

        var body = new MemoryStream();
        using (var gzip = new GZipStream(body, CompressionLevel.Optimal, leaveOpen: true))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (var (name, content) in new[] { ("COPYING", "test signatures\n"u8.ToArray()), ("daily.info", info), ("daily.hdb", hdb) })
            {
                tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content), Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
            }
        }

#pragma warning disable CA5351 // the CVD header's checksum is MD5
        var md5 = Convert.ToHexStringLower(MD5.HashData(body.ToArray()));
#pragma warning restore CA5351
        var head = Encoding.ASCII.GetBytes($"{header}:{md5}:X:onaccess-tests:{seconds}".PadRight(512));
        Assert.Equal(512, head.Length);
        var temporary = Path.Combine(directory, ".daily.cud.new");
        File.WriteAllBytes(temporary, [.. head, .. body.ToArray()]);
        File.Move(temporary, Path.Combine(directory, "daily.cud"), overwrite: true);
    }

    /// <summary>Sends one command to clamd and returns its reply (RELOAD answers RELOADING and reloads in the background).</summary>
    public static async Task<string> CommandAsync(string socketPath, string command)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(OnAccess.Tests.KernelTestSupport.Timeout);
        await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath), cts.Token);
        await socket.SendAsync(Encoding.ASCII.GetBytes("z" + command + "\0"), cts.Token);
        var reply = new MemoryStream();
        var buffer = new byte[256];
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer, cts.Token);
            var end = Array.IndexOf(buffer, (byte)0, 0, n);
            reply.Write(buffer, 0, end < 0 ? n : end);
            if (n == 0 || end >= 0)
            {
                return Encoding.ASCII.GetString(reply.ToArray());
            }
        }
    }
}
