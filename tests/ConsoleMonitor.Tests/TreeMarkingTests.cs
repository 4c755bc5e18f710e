using OnAccess.ClamAV.Tests;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>
/// --tree-marking filesystem (issue 18): one mark holds every open on the filesystem of an include path, so the whole
/// filesystem depends on the monitor. What a dead monitor leaves: nothing held, at once.
/// </summary>
[Collection(nameof(MonitorCollection))]
public sealed class TreeMarkingTests
{
    /// <summary>
    /// The monitor stopped (SIGSTOP: nothing in it runs, not even the deadline) holds a shell's open outside the tree on
    /// that filesystem; killed, the kernel answers that open at once (its group is gone) and nothing is held afterwards.
    /// </summary>
    [Fact]
    public async Task A_killed_monitor_releases_every_open_on_the_filesystem_at_once()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var fs = await tree.MountTmpfsAsync("fs");
        var inside = Path.Combine(fs, "P", "eicar.com");
        Directory.CreateDirectory(Path.GetDirectoryName(inside)!);
        File.WriteAllText(inside, MonitorProcess.Eicar);
        var users = Path.Combine(fs, "O");
        Directory.CreateDirectory(users);
        var outside = Path.Combine(users, "f");
        File.WriteAllText(outside, "outside");
        var fresh = Path.Combine(users, "g"); // never opened while the monitor runs (the other, scanned, is then in the kernel's cache)
        File.WriteAllText(fresh, "outside");
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/chown", "-R", "65534", users)).ExitCode); // a user's: every open there held

        await using var monitor = MonitorProcess.Start("--include", Path.Combine(fs, "P"), "--prevention", "--tree-marking", "filesystem");
        await monitor.ReadyAsync();
        Assert.Contains("Operation not permitted", (await KernelTestSupport.RunAsync("/bin/cat", inside)).StdErr, StringComparison.Ordinal);
        Assert.Equal("outside", (await KernelTestSupport.RunAsync("/bin/cat", outside)).StdOut);

        await monitor.SignalAsync("STOP");
        await Poll.UntilAsync(() => Directory.GetDirectories($"/proc/{monitor.Pid}/task").All(Stopped), "every thread of the monitor to be stopped");
        var held = KernelTestSupport.RunAsync("/bin/cat", fresh);
        await Task.Delay(300, TestContext.Current.CancellationToken);
        Assert.False(held.IsCompleted, "with the monitor stopped, an open on its filesystem waits for it");
        await monitor.SignalAsync("KILL");
        Assert.Equal("outside", (await held.WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken)).StdOut);
        Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", inside)).StdOut); // no monitor: nothing held
    }

    /// <summary>Whether a thread is stopped (state T in /proc/PID/task/TID/stat, after the command's closing parenthesis).</summary>
    private static bool Stopped(string task)
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(task, "stat"));
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T');
        }
        catch (IOException)
        {
            return true; // gone
        }
    }
}
