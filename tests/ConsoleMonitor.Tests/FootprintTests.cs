using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

[Collection(nameof(MonitorCollection))]
public sealed class FootprintTests
{
    /// <summary>
    /// The generic host reloads appsettings.json on change by watching its content root, the working directory, with
    /// a recursive FileSystemWatcher: one inotify watch per directory below it (17,407 when started from /usr), from
    /// the same per-user limit the directory tracker needs. The monitor turns that off.
    /// </summary>
    [Fact]
    public async Task The_monitor_watches_what_it_protects_and_not_its_working_directory()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var protectedDirectory = tree.Combine("protected");
        Directory.CreateDirectory(protectedDirectory);
        var workingDirectory = tree.Combine("cwd");
        for (var i = 0; i < 50; i++)
        {
            Directory.CreateDirectory(Path.Combine(workingDirectory, $"d{i}", "sub"));
        }

        await using var monitor = MonitorProcess.StartIn(workingDirectory, "--include", protectedDirectory, "--prevention", "--scanner", "allow-all");
        await monitor.ReadyAsync();

        var most = 0;
        for (var sample = 0; sample < 20; sample++) // a watcher would be set up just after start: look for a second
        {
            most = Math.Max(most, InotifyWatches(monitor.Pid));
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        // The tracker's: the protected directory and its parent (to see the root come back if it goes).
        Assert.Equal(2, most);
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    private static int InotifyWatches(int pid) =>
        KernelTestSupport.FdInfoLines(pid, "anon_inode:inotify").Count(line => line.StartsWith("inotify wd:", StringComparison.Ordinal));
}
