using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OnAccess.ClamAV;
using OnAccess.ClamAV.Tests;
using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Health (issue 16, item 4), each state made real: the reading thread stopped in the kernel as a hung call would
/// stop it, the watch limit lowered, the kernel's queue overflowed, the scan queue filled, clamd killed.
/// </summary>
public sealed class HealthTests
{
    private const string ReaderThread = "OnAccess events";

    /// <summary>The directory tracker's inotify reader ("OnAccess inotify reader", as /proc shows it: 15 bytes).</summary>
    private const string TreeReaderThread = "OnAccess inotif";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_monitor_is_Unhealthy_until_it_runs_Healthy_while_it_protects_and_Unhealthy_once_stopped()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        Directory.CreateDirectory(tree.Combine("root/a"));
        var monitor = new OnAccessMonitor(new OnAccessOptions { IncludePaths = [tree.Combine("root")], Prevention = true }, new EicarScanner());
        Assert.Equal(HealthStatus.Unhealthy, (await monitor.CheckHealthAsync(Cancel)).Status);
        Assert.False(await monitor.IsRespondingAsync(Cancel));

        await monitor.StartAsync(CancellationToken.None);
        var running = await monitor.CheckHealthAsync(Cancel);
        Assert.True(running.Status == HealthStatus.Healthy, running.Description);
        Assert.Equal("protecting 2 directories", running.Description);
        Assert.Equal(2L, running.Data["marked_directories"]);
        Assert.Equal("responding", running.Data["event_loop"]);
        Assert.True(await monitor.IsRespondingAsync(Cancel));

        await monitor.DisposeAsync();
        var stopped = await monitor.CheckHealthAsync(Cancel);
        Assert.Equal(HealthStatus.Unhealthy, stopped.Status);
        Assert.Contains("not running", stopped.Description, StringComparison.Ordinal);
        Assert.False(await monitor.IsRespondingAsync(Cancel));
    }

    /// <summary>
    /// The reading thread is stopped (ptrace, the rest of the process runs on) and an open waits: the loop does not
    /// respond and the monitor is Unhealthy, naming it; once the thread runs again the open is answered and all is well.
    /// </summary>
    [Fact]
    public async Task A_stuck_event_loop_is_Unhealthy_and_does_not_respond_until_it_reads_again()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var file = tree.File("root/clean.txt", "clean");
        var readers = FrozenThread.ThreadsNamed(Environment.ProcessId, ReaderThread);
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [tree.Combine("root")], Prevention = true }, new EicarScanner());
        var reader = Assert.Single(FrozenThread.ThreadsNamed(Environment.ProcessId, ReaderThread).Except(readers));
        Assert.True(await h.Monitor.IsRespondingAsync(Cancel));

        System.Diagnostics.Process cat;
        using (await FrozenThread.FreezeAsync(reader))
        {
            cat = KernelTestSupport.Start("/bin/cat", file); // its open waits: nobody reads the event
            await Settled.UntilAsync(async () => !await h.Monitor.IsRespondingAsync(Cancel), KernelTestSupport.Timeout);
            Assert.False(await h.Monitor.IsRespondingAsync(Cancel));
            var stuck = await h.Monitor.CheckHealthAsync(Cancel);
            Assert.Equal(HealthStatus.Unhealthy, stuck.Status);
            Assert.Contains("the event loop is stuck", stuck.Description, StringComparison.Ordinal);
            Assert.Equal("stuck", stuck.Data["event_loop"]);
            Assert.False(cat.HasExited, "the open was answered while the loop was stopped");
        }

        using (cat)
        {
            await cat.WaitForExitAsync(Cancel).WaitAsync(KernelTestSupport.Timeout, Cancel);
            Assert.Equal(0, cat.ExitCode);
        }

        Assert.True(await h.Monitor.IsRespondingAsync(Cancel));
        var healthy = await h.Monitor.CheckHealthAsync(Cancel);
        Assert.True(healthy.Status == HealthStatus.Healthy, healthy.Description);
    }

    [Fact]
    public async Task Directories_the_watch_limit_leaves_unprotected_make_it_Degraded_until_they_are_protected()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var root = tree.Combine("root");
        Directory.CreateDirectory(root);
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());
        using (KernelTestSupport.SetSysctl("/proc/sys/fs/inotify/max_user_watches", KernelTestSupport.RootInotifyWatches().ToString(CultureInfo.InvariantCulture)))
        {
            for (var i = 0; i < 5; i++)
            {
                Directory.CreateDirectory(Path.Combine(root, $"made{i}"));
            }

            await Settled.UntilAsync(() => h.Monitor.GetStatistics().UnprotectedDirectories >= 5, KernelTestSupport.Timeout);
            var degraded = await h.Monitor.CheckHealthAsync(Cancel);
            Assert.Equal(HealthStatus.Degraded, degraded.Status);
            Assert.Contains("directories (with what is below them) could not be watched or marked and are retried", degraded.Description, StringComparison.Ordinal);
            Assert.True((long)degraded.Data["unprotected_directories"] >= 5);
        }

        await Settled.UntilAsync(() => h.Monitor.GetStatistics().UnprotectedDirectories == 0, TimeSpan.FromSeconds(15));
        var healthy = await h.Monitor.CheckHealthAsync(Cancel);
        Assert.True(healthy.Status == HealthStatus.Healthy, healthy.Description);
    }

    /// <summary>
    /// The tracker's reading thread stopped (as a busy machine would delay it) while 400 directories are made: inotify's
    /// queue (256 events here) overflows, for certain; once it reads again the overflow is counted and the monitor is
    /// Degraded, naming it.
    /// </summary>
    [Fact]
    public async Task A_kernel_queue_overflow_makes_it_Degraded()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var root = tree.Combine("root");
        Directory.CreateDirectory(root);
        var readers = FrozenThread.ThreadsNamed(Environment.ProcessId, TreeReaderThread);
        MonitorHarness h;
        using (KernelTestSupport.SetSysctl("/proc/sys/fs/inotify/max_queued_events", "256"))
        {
            h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());
        }

        await using (h)
        {
            Assert.Equal(HealthStatus.Healthy, (await h.Monitor.CheckHealthAsync(Cancel)).Status);
            var reader = Assert.Single(FrozenThread.ThreadsNamed(Environment.ProcessId, TreeReaderThread).Except(readers));
            using (await FrozenThread.FreezeAsync(reader))
            {
                for (var i = 0; i < 400; i++)
                {
                    Directory.CreateDirectory(Path.Combine(root, $"d{i}"));
                }
            }

            await Settled.UntilAsync(() => h.Monitor.GetStatistics().Overflows > 0, KernelTestSupport.Timeout);
            var degraded = await h.Monitor.CheckHealthAsync(Cancel);
            Assert.True(degraded.Status == HealthStatus.Degraded, degraded.Description);
            Assert.Contains("the kernel's event queue overflowed", degraded.Description, StringComparison.Ordinal);
            Assert.True((long)degraded.Data["overflows"] > 0);
        }
    }

    [Fact]
    public async Task A_full_scan_queue_makes_it_Degraded()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var files = Enumerable.Range(0, 20).Select(i => tree.File($"root/f{i}.txt", $"clean {i}")).ToArray();
        var scanner = new EicarScanner { Delay = TimeSpan.FromMilliseconds(300) };
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [tree.Combine("root")], Prevention = true, MaxThreads = 1 }, scanner, new OnAccessEngineOptions { QueueCapacity = 1 });
        await Attacker.RunAsync(["parallel-open", "20", .. files]);
        Assert.True(h.Monitor.GetStatistics().QueueFull > 0, "the queue was never full");
        var degraded = await h.Monitor.CheckHealthAsync(Cancel);
        Assert.Equal(HealthStatus.Degraded, degraded.Status);
        Assert.Contains("the scan queue (1) was full", degraded.Description, StringComparison.Ordinal);
    }

    /// <summary>
    /// Two endpoints, one of them a socket nobody made: Degraded (the other scans); clamd killed: Unhealthy (nothing can
    /// be scanned); clamd started again: Degraded again. Each endpoint's state is in the data.
    /// </summary>
    [Fact]
    public async Task Clamd_endpoints_down_make_it_Degraded_and_all_of_them_down_Unhealthy()
    {
        KernelTestSupport.RequireRoot();
        await using var clamd = new ClamdFixture();
        await clamd.InitializeAsync();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        tree.File("root/clean.txt", "clean");
        var missing = "unix:" + tree.Combine("no-clamd.sock");
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [clamd.UnixEndpoint, missing], ConnectTimeout = TimeSpan.FromSeconds(2) });
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [tree.Combine("root")], Prevention = true }, scanner);

        var one = await h.Monitor.CheckHealthAsync(Cancel);
        Assert.Equal(HealthStatus.Degraded, one.Status);
        Assert.Contains("1 of 2 clamd endpoints down", one.Description, StringComparison.Ordinal);
        Assert.Contains("no such socket", one.Description, StringComparison.Ordinal);
        Assert.StartsWith("up; in the balance", (string)one.Data["scanner clamd " + clamd.UnixEndpoint], StringComparison.Ordinal);

        clamd.Kill();
        var none = await h.Monitor.CheckHealthAsync(Cancel);
        Assert.Equal(HealthStatus.Unhealthy, none.Status);
        Assert.Contains("no clamd endpoint answers", none.Description, StringComparison.Ordinal);
        Assert.Equal("Unhealthy", none.Data["scanner"]);

        await clamd.StartAsync();
        Assert.Equal(HealthStatus.Degraded, (await h.Monitor.CheckHealthAsync(Cancel)).Status);
    }
}
