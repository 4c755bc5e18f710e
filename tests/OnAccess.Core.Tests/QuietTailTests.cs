using OnAccess.Tests;

namespace OnAccess.Core.Tests;

/// <summary>
/// The engine's helper threads sleep while opens are scanned on the reading thread and no scan holds it: a wake-up
/// of another thread in the middle of a stream of opens is a context switch an open waits behind (the tail of the
/// latency), so the rescuer and the deadline watch wake only when a scan needs them, not per scan or per millisecond.
/// </summary>
[Collection(nameof(KernelCollection))]
public sealed class QuietTailTests
{
    private const int Files = 200;
    private const int Rounds = 15;

    [Fact]
    public async Task Scans_on_the_reading_thread_wake_neither_the_rescuer_nor_the_deadline_watch_per_scan_or_per_tick()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        for (var i = 0; i < Files; i++)
        {
            tree.File($"data/f{i}", "clean");
        }

        // Caches off: every open is an event and a scan, run on the reading thread (small files).
        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true, ScanTimeout = TimeSpan.FromSeconds(5) };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner(), new OnAccessEngineOptions { CacheCapacity = 0, KernelCache = false });
        var warm = await Child.ShAsync($"for i in $(seq 0 {Files - 1}); do : < {tree.Combine("data")}/f$i; done");
        Assert.Equal(0, warm.ExitCode);

        var before = HelperWakeUps();
        var poolItems = ThreadPool.CompletedWorkItemCount;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var run = await Child.ShAsync($"for r in $(seq {Rounds}); do for i in $(seq 0 {Files - 1}); do : < {tree.Combine("data")}/f$i; done; done");
        var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
        var after = HelperWakeUps();
        var lastPath = tree.Combine("data", $"f{Files - 1}");
        using (var cts = new CancellationTokenSource(KernelTestSupport.Timeout))
        {
            while (h.Events.Count(e => e.Path == lastPath) < Rounds + 1)
            {
                await Task.Delay(10, cts.Token); // the last open's decision, delivered
            }
        }

        poolItems = ThreadPool.CompletedWorkItemCount - poolItems;

        Assert.Equal(0, run.ExitCode);
        const int opens = Files * Rounds;
        var scanned = h.Monitor.GetStatistics().Scans;
        Assert.True(scanned >= opens, $"every open was scanned ({scanned})");
        var rescuer = after.Rescuer - before.Rescuer;
        var deadlines = after.Deadlines - before.Deadlines;

        // Before: the rescuer woke every millisecond while scans ran (about elapsed / 1 ms), and the deadline watch
        // once per scan (each scan was alone in its list). Now: the rescuer looks every CoarseTickMilliseconds (and
        // reads a little while it relieves a reader held for a tick: a preempted reader, on two busy cores); the watch
        // wakes when a deadline is due.
        var looks = elapsed.TotalMilliseconds / EventLoop.CoarseTickMilliseconds;
        var bound = looks + 10 + (10 * (h.Monitor.Engine?.Rescues ?? 0));
        Assert.True(rescuer <= bound, $"rescuer woke {rescuer} times in {elapsed.TotalMilliseconds:F0} ms of {opens} scanned opens, {(h.Monitor.Engine?.Rescues ?? 0)} rescues (at most {bound:F0})");
        Assert.True(deadlines <= 10, $"the deadline watch woke {deadlines} times in {opens} scanned opens, none of them late");

        // Every decision reached the observer (the harness), without a thread-pool work item each: an awaited channel
        // handed each one to a pool worker (3,000 here), which spins before it sleeps.
        Assert.True(poolItems < opens / 10, $"{poolItems} thread-pool work items for {opens} decisions delivered");
    }

    /// <summary>The context switches (voluntary and not) of this process's rescuer and deadline threads.</summary>
    private static (long Rescuer, long Deadlines) HelperWakeUps()
    {
        long rescuer = 0, deadlines = 0;
        foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            string name;
            string[] status;
            try
            {
                name = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
                status = File.ReadAllLines(Path.Combine(task, "status"));
            }
            catch (IOException)
            {
                continue; // the thread ended
            }

            var switches = status.Where(l => l.Contains("ctxt_switches", StringComparison.Ordinal)).Sum(l => long.Parse(l.Split(':')[1].Trim(), System.Globalization.CultureInfo.InvariantCulture));
            if (name.StartsWith("OnAccess rescue", StringComparison.Ordinal))
            {
                rescuer += switches;
            }
            else if (name.StartsWith("OnAccess deadli", StringComparison.Ordinal))
            {
                deadlines += switches;
            }
        }

        return (rescuer, deadlines);
    }
}
