using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using OnAccess.Tests;

namespace OnAccess.ClamAV.Tests;

/// <summary>
/// A private clamd from Debian's clamav-daemon: its own config (LocalSocket in a temp dir, TCP on 127.0.0.1 with a
/// free port, Foreground), a DatabaseDirectory holding only a generated .hdb with the MD5 of EICAR and of clam.exe
/// (no internet, no freshclam), started here and stopped here, by pid.
/// </summary>
public class ClamdFixture : IAsyncLifetime
{
    public const long StreamMaxLength = 1024 * 1024;

    private Process? _clamd;

    internal KernelTestSupport.TempTree Tree { get; } = KernelTestSupport.CreateTempTree("onaccess-clamd-");

    public string Socket => Tree.Combine("clamd.sock");

    public int Port { get; private set; }

    public string UnixEndpoint => "unix:" + Socket;

    public string TcpEndpoint => $"tcp://127.0.0.1:{Port}";

    public string ConfPath => Tree.Combine("clamd.conf");

    /// <summary>More .hdb lines for the database, beyond EICAR and clam.exe.</summary>
    protected virtual IEnumerable<string> ExtraSignatures => [];

    /// <summary>clamd's StreamMaxLength.</summary>
    protected virtual long StreamLimit => StreamMaxLength;

    public async ValueTask InitializeAsync()
    {
        var clam = TestFiles.ReadClamExe();
        Directory.CreateDirectory(Tree.Combine("db"));
        Directory.CreateDirectory(Tree.Combine("tmp"));
        File.WriteAllLines(Tree.Combine("db", "test.hdb"), [TestFiles.HdbLine(TestFiles.Eicar, "Test.Eicar"), TestFiles.HdbLine(clam, "Test.ClamExe"), .. ExtraSignatures]);
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        File.WriteAllText(ConfPath, $"""
            LocalSocket {Socket}
            TCPSocket {Port}
            TCPAddr 127.0.0.1
            Foreground yes
            DatabaseDirectory {Tree.Combine("db")}
            TemporaryDirectory {Tree.Combine("tmp")}
            LogFile {Tree.Combine("clamd.log")}
            MaxThreads 32
            MaxConnectionQueueLength 64
            StreamMaxLength {StreamLimit}
            Bytecode no
            """);
        await StartAsync();
    }

    public async Task StartAsync()
    {
        Assert.True(File.Exists("/usr/sbin/clamd"), "clamd is missing: install Debian's clamav-daemon (scripts/test.sh does).");
        _clamd = KernelTestSupport.Start("/usr/sbin/clamd", $"--config-file={ConfPath}");
        // clamd logs every detection to its output too: drain it, or a full pipe stalls every scan.
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        _clamd.OutputDataReceived += (_, e) => Keep(output, e.Data);
        _clamd.ErrorDataReceived += (_, e) => Keep(output, e.Data);
        _clamd.BeginOutputReadLine();
        _clamd.BeginErrorReadLine();
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [UnixEndpoint, TcpEndpoint] });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var pings = await scanner.PingAsync(cts.Token);
            if (pings.Values.All(p => p))
            {
                return;
            }

            if (_clamd.HasExited)
            {
                throw new InvalidOperationException($"clamd exited with {_clamd.ExitCode}: {string.Join(' ', output)}");
            }

            await Task.Delay(100, cts.Token);
        }
    }

    private static void Keep(System.Collections.Concurrent.ConcurrentQueue<string> output, string? line)
    {
        if (line is not null && output.Count < 200)
        {
            output.Enqueue(line);
        }
    }

    /// <summary>The running clamd's pid.</summary>
    public int Pid => _clamd?.Id ?? throw new InvalidOperationException("clamd is not running");

    /// <summary>Stops clamd with SIGSTOP (it holds its sockets and answers nothing) or lets it go on with SIGCONT.</summary>
    public async Task SignalAsync(string signal)
    {
        var result = await KernelTestSupport.RunAsync("/bin/kill", "-" + signal, Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, result.ExitCode);
    }

    public void Kill()
    {
        if (_clamd is { HasExited: false } clamd)
        {
            clamd.Kill();
            clamd.WaitForExit(10_000);
        }

        _clamd?.Dispose();
        _clamd = null;
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        Tree.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}
