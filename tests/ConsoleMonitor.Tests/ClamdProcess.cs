using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>
/// A private clamd from Debian's clamav-daemon for one test: a unix socket in the test's tree, a database of the given
/// .hdb lines only (no freshclam, no network), started and stopped here by its pid. Ready when it prints "Self
/// checking", which clamd does after its socket listens and before it accepts.
/// </summary>
internal sealed class ClamdProcess : IAsyncDisposable
{
    private const string Clamd = "/usr/sbin/clamd";

    private readonly Process _process;

    private ClamdProcess(Process process, string socket)
    {
        _process = process;
        Endpoint = "unix:" + socket;
    }

    /// <summary>The --clamd value: <c>unix:PATH</c>.</summary>
    public string Endpoint { get; }

    public static async Task<ClamdProcess> StartAsync(KernelTestSupport.TempTree tree, IEnumerable<string> hdbLines)
    {
        Assert.True(File.Exists(Clamd), "clamd is missing: install Debian's clamav-daemon (scripts/test.sh does).");
        var db = tree.Combine("clamd", "db");
        Directory.CreateDirectory(db);
        Directory.CreateDirectory(tree.Combine("clamd", "tmp"));
        File.WriteAllText(Path.Combine(db, "test.hdb"), string.Concat(hdbLines));
        var socket = tree.Combine("clamd", "clamd.sock");
        var conf = tree.File("clamd/clamd.conf", $"""
            LocalSocket {socket}
            Foreground yes
            DatabaseDirectory {db}
            TemporaryDirectory {tree.Combine("clamd", "tmp")}
            SelfCheck 600
            Bytecode no
            """);
        var process = KernelTestSupport.Start(Clamd, $"--config-file={conf}");
        var clamd = new ClamdProcess(process, socket);
        try
        {
            var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
            void Line(string? line)
            {
                if (line is null)
                {
                    return;
                }

                if (output.Count < 200)
                {
                    output.Enqueue(line);
                }

                if (line.StartsWith("Self checking", StringComparison.Ordinal))
                {
                    ready.TrySetResult();
                }
            }

            // Drained to the end: clamd logs every detection, and a full pipe would stall its scans.
            process.OutputDataReceived += (_, e) => Line(e.Data);
            process.ErrorDataReceived += (_, e) => Line(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await Task.WhenAny(ready.Task, process.WaitForExitAsync(cts.Token)).WaitAsync(cts.Token);
            Assert.True(ready.Task.IsCompleted, $"clamd exited before it was ready: {string.Join(" | ", output)}");
            Assert.Equal("PONG", await PingAsync(socket, cts.Token));
            return clamd;
        }
        catch
        {
            await clamd.DisposeAsync();
            throw;
        }
    }

    private static async Task<string> PingAsync(string socket, CancellationToken cancellationToken)
    {
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(socket), cancellationToken);
        await client.SendAsync("zPING\0"u8.ToArray(), cancellationToken);
        var buffer = new byte[64];
        var length = 0;
        int n;
        while ((n = await client.ReceiveAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += n;
        }

        return Encoding.ASCII.GetString(buffer, 0, length).TrimEnd('\0', '\n');
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
            await _process.WaitForExitAsync(cts.Token);
        }

        _process.Dispose();
    }
}
