using System.Collections.Concurrent;
using OnAccess.Tests;

namespace OnAccess.Core.Tests;

/// <summary>
/// Observers are told when the decisions waiting for them have all been delivered
/// (<see cref="IOnAccessObserver.OnEventsDelivered"/>), so one that writes (ConsoleMonitor prints every decision) can
/// buffer a run of decisions and write it once, instead of a write(2) per decision on a machine the opens share; and
/// nothing buffered is lost when the monitor stops.
/// </summary>
[Collection(nameof(KernelCollection))]
public sealed class ObserverBatchTests
{
    [Fact]
    public async Task A_burst_of_decisions_is_delivered_in_runs_each_followed_by_the_delivered_call()
    {
        var log = new ConcurrentQueue<int>(); // item numbers, and -1 for each "all delivered"
        var queue = new ObserverQueue<object>(100_000, item => log.Enqueue((int)item), "test reports", () => log.Enqueue(-1));
        queue.Start();
        const int Items = 20_000;
        for (var i = 0; i < Items; i++)
        {
            Assert.True(queue.TryAdd(i));
        }

        using (var cts = new CancellationTokenSource(KernelTestSupport.Timeout))
        {
            while (log.Count(x => x >= 0) < Items || log.Last() != -1)
            {
                await Task.Delay(10, cts.Token);
            }
        }

        var entries = log.ToList();
        var runs = entries.Count(x => x < 0);
        Assert.True(runs >= 1 && runs <= Items / 100, $"{runs} runs for {Items} decisions added at once: each run should carry many");
        Assert.Equal(Enumerable.Range(0, Items), entries.Where(x => x >= 0)); // in order, each once
        Assert.DoesNotContain(entries.Zip(entries.Skip(1)), pair => pair is (-1, -1)); // never told of an empty run
        await queue.StopAsync().WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Stopping_delivers_what_waits_and_then_says_so()
    {
        var log = new ConcurrentQueue<int>();
        using var hold = new ManualResetEventSlim(false);
        var queue = new ObserverQueue<object>(1000, item =>
        {
            hold.Wait(KernelTestSupport.Timeout); // the drainer is busy with the first while the rest are added
            log.Enqueue((int)item);
        }, "test reports", () => log.Enqueue(-1));
        queue.Start();
        for (var i = 0; i < 50; i++)
        {
            Assert.True(queue.TryAdd(i));
        }

        var stopped = queue.StopAsync();
        hold.Set();
        await stopped.WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken);
        var entries = log.ToList();
        Assert.Equal(Enumerable.Range(0, 50), entries.Where(x => x >= 0));
        Assert.Equal(-1, entries[^1]); // the last decisions are followed by the call that flushes them
    }

    [Fact]
    public async Task A_monitors_observers_are_told_after_its_decisions_are_delivered()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        for (var i = 0; i < 50; i++)
        {
            tree.File($"data/f{i}", "clean");
        }

        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());
        var run = await Child.ShAsync($"for i in $(seq 0 49); do : < {tree.Combine("data")}/f$i; done");
        Assert.Equal(0, run.ExitCode);
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        while (h.Events.Count < 50 || h.DeliveredCalls == 0 || h.EventsAtLastDeliveredCall < h.Events.Count)
        {
            await Task.Delay(10, cts.Token); // every decision, then the call that follows it
        }

        Assert.True(h.DeliveredCalls <= h.Events.Count, $"{h.DeliveredCalls} calls for {h.Events.Count} decisions");
    }
}
