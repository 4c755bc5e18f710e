using System.Diagnostics;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>
/// A child that makes its access and then stays alive, blocked, until the test releases it: the monitor reads the UID
/// of a notify-only access from the live process, so the child must outlive the decision. It waits reading a line from
/// a FIFO that the test holds open read-write (so no open blocks on either side), and the test writes that line only
/// after it has seen what it waited for. No sleep decides how long the child lives.
/// </summary>
internal sealed class HeldChild : IDisposable
{
    private readonly KernelTestSupport.TempTree _dir;
    private readonly FileStream _gate;
    private readonly Process _process;
    private readonly Task<string> _stdout;
    private readonly Task<string> _stderr;

    private HeldChild(KernelTestSupport.TempTree dir, FileStream gate, Process process)
    {
        _dir = dir;
        _gate = gate;
        _process = process;
        _stdout = process.StandardOutput.ReadToEndAsync();
        _stderr = process.StandardError.ReadToEndAsync();
    }

    public int Pid => _process.Id;

    /// <summary>
    /// Runs <c>/bin/sh -c "SCRIPT; read a line from the gate"</c> behind <paramref name="prefix"/> (for example
    /// <c>setpriv --reuid=1000 ...</c>); the gate is a FIFO any user may open.
    /// </summary>
    public static async Task<HeldChild> StartAsync(string[] prefix, string script)
    {
        var dir = KernelTestSupport.CreateTempTree("onaccess-gate-");
        try
        {
            File.SetUnixFileMode(dir.Path, (UnixFileMode)0b111_101_101);
            var fifo = dir.Combine("gate");
            Assert.Equal(0, (await KernelTestSupport.RunAsync("/usr/bin/mkfifo", "-m", "666", fifo)).ExitCode);
            var gate = new FileStream(fifo, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0); // O_RDWR: never blocks
            var all = (string[])[.. prefix, "/bin/sh", "-c", $"{script}\nread -r _ < '{fifo}'"];
            return new HeldChild(dir, gate, KernelTestSupport.Start(all[0], all[1..]));
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>Lets the child go and returns how it ended.</summary>
    public async Task<KernelTestSupport.ChildResult> ReleaseAsync()
    {
        _gate.Write("go\n"u8);
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        await _process.WaitForExitAsync(cts.Token);
        return new KernelTestSupport.ChildResult(_process.ExitCode, await _stdout, await _stderr, _process.Id);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(KernelTestSupport.Timeout);
        }

        _process.Dispose();
        _gate.Dispose();
        _dir.Dispose();
    }
}
