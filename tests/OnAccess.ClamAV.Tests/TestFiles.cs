using System.Security.Cryptography;
using System.Text;
using OnAccess.Tests;

namespace OnAccess.ClamAV.Tests;

/// <summary>The sample files every scanner test uses, and signature lines for them.</summary>
internal static class TestFiles
{
    /// <summary>Debian's clamav-testfiles (scripts/test.sh installs the package).</summary>
    public const string ClamExe = "/usr/share/clamav-testfiles/clam.exe";

    public static byte[] Eicar => Encoding.ASCII.GetBytes(HashDatabaseScanner.EicarTestString);

#pragma warning disable CA5351, CA5350 // the signature formats are MD5 and SHA-1
    public static string HdbLine(byte[] content, string name) => $"{Convert.ToHexStringLower(MD5.HashData(content))}:{content.Length}:{name}";

    public static string HsbSha1Line(byte[] content, string name) => $"{Convert.ToHexStringLower(SHA1.HashData(content))}:{content.Length}:{name}";
#pragma warning restore CA5351, CA5350

    public static string HsbSha256Line(byte[] content, string name, bool anySize = false) =>
        $"{Convert.ToHexStringLower(SHA256.HashData(content))}:{(anySize ? "*" : content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture))}:{name}";

    public static byte[] ReadClamExe()
    {
        Assert.True(File.Exists(ClamExe), $"{ClamExe} is missing: install Debian's clamav-testfiles (scripts/test.sh does).");
        return File.ReadAllBytes(ClamExe);
    }

    public static async Task<ScanResult> ScanAsync(IScanner scanner, string path)
    {
        using var handle = File.OpenHandle(path);
        return await scanner.ScanAsync(new ScanRequest(handle, path, RandomAccess.GetLength(handle), 0, null, AccessKind.Open), CancellationToken.None);
    }

    public static KernelTestSupport.TempTree Tree() => KernelTestSupport.CreateTempTree("onaccess-clamav-");
}
