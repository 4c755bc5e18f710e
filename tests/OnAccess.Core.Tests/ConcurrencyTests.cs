using OnAccess.Tests;

namespace OnAccess.Core.Tests;

[Collection(nameof(KernelCollection))]
public sealed class ConcurrencyTests
{
    /// <summary>
    /// With an asynchronous scanner, and with one that blocks its thread (on the reader, then rescued). The queue is
    /// far smaller than the number of opens, so the descriptor bound is one that an engine holding every access it
    /// reads would break (by hundreds), and accesses beyond it are answered at once (allowed here, and counted).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_thousand_concurrent_opens_run_MaxThreads_scans_at_once_hold_bounded_descriptors_and_all_complete(bool blocking)
    {
        KernelTestSupport.RequireRoot();
        const int Files = 1000;
        const int QueueCapacity = 64;
        var tree = KernelTestSupport.CreateTempTree();
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        for (var i = 0; i < Files; i++)
        {
            File.WriteAllText(Path.Combine(data, $"f{i}"), "x");
        }

        var scanner = new EicarScanner { Delay = TimeSpan.FromMilliseconds(50), BlockThread = blocking };
        var options = new Config.OnAccessOptions { IncludePaths = [data], Prevention = true, MaxThreads = 5, ScanTimeout = TimeSpan.FromSeconds(60) };
        const int KernelCacheCapacity = 100;
        await using var h = await MonitorHarness.StartAsync(tree, options, scanner, new OnAccessEngineOptions { QueueCapacity = QueueCapacity, QueueFullDecision = AccessDecision.Allow, KernelCacheCapacity = KernelCacheCapacity });

        var baseline = Directory.GetFiles("/proc/self/fd").Length;
        var maxDescriptors = 0;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                maxDescriptors = Math.Max(maxDescriptors, Directory.GetFiles("/proc/self/fd").Length);
                await Task.Delay(5, CancellationToken.None);
            }
        }, TestContext.Current.CancellationToken);

        // One child forks a reader per file, all at once.
        var result = await KernelTestSupport.RunAsync("/bin/bash", ["-c", $"cd '{data}' && for i in $(seq 0 {Files - 1}); do cat f$i > /dev/null & done; wait; echo done"], TimeSpan.FromMinutes(3));
        await sampling.CancelAsync();
        await sampler;

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("done\n", result.StdOut);
        Assert.Equal(5, scanner.Peak);
        // Each queued access holds its event's descriptor; each running scan also a lease's; each file in the kernel
        // cache a lease's; the events of one read (24 bytes each at least), and their pidfds, until they are decided,
        // for each of the two threads that read (the reader, and the rescuer while a scan holds the reader). And this
        // test's own: the pipes it reads the child's output from (both ends while it starts it), opened after the
        // baseline (seen once: 517 against a bound of 514 that counted one read and no pipes).
        var oneRead = 2 * (MonitorEngine.ReadBufferSize / 24);
        const int ChildPipes = 4;
        var bound = QueueCapacity + (2 * 5) + KernelCacheCapacity + (2 * oneRead) + ChildPipes;
        TestContext.Current.TestOutputHelper?.WriteLine($"{maxDescriptors - baseline} descriptors held at once at most (bound {bound})");
        Assert.True(maxDescriptors - baseline <= bound, $"{maxDescriptors - baseline} descriptors held at once (bound {bound})");
        var statistics = h.Monitor.GetStatistics();
        Assert.Equal(Files, statistics.Allowed);
        Assert.Equal(0, statistics.Denied);
        Assert.True(statistics.QueueFull > 0, "the queue never filled: the descriptor bound was not tested");
        Assert.Equal(Files, statistics.Scans + statistics.QueueFull);
    }
}
