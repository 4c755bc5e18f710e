using OnAccess.Tests;

namespace OnAccess.Core.Tests;

[Collection(nameof(KernelCollection))]
public sealed class SelfAccessTests
{
    /// <summary>
    /// The scan of a small file runs on the thread that reads events; a scanner that opens a protected file there
    /// blocks in its own open, and the rescuer, reading in its place, answers it (this process's opens are allowed).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_scanner_that_opens_files_in_the_protected_directory_by_path_does_not_deadlock(bool synchronous)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var neighbour = tree.File("data/neighbour.txt", "next door");
        var target = tree.File("data/target.txt", "target");
        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true, ScanTimeout = TimeSpan.FromSeconds(10) };
        IScanner scanner = synchronous ? new SyncPathReadingScanner(neighbour) : new PathReadingScanner(neighbour);
        await using var h = await MonitorHarness.StartAsync(tree, options, scanner);

        var result = await Child.CatAsync(target);

        Assert.Equal((0, "target"), (result.ExitCode, result.StdOut));
        var decision = await h.WaitForPathAsync(target);
        Assert.Equal((DecisionReason.Scanned, ScanVerdict.Clean), (decision.Reason, decision.Verdict));
        Assert.True(h.Monitor.Engine?.Rescues >= 1, "the scan's own open was answered by the rescuer");
    }

    [Fact]
    public async Task A_scan_that_blocks_the_reader_does_not_hold_other_processes_opens()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var slow = tree.File("data/slow.txt", "slow");
        var other = tree.File("data/other.txt", "other");
        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true, ScanTimeout = TimeSpan.FromSeconds(30) };
        using var scanner = new BlockingScanner(slow);
        await using var h = await MonitorHarness.StartAsync(tree, options, scanner);

        var held = Child.CatAsync(slow);
        Assert.True(await scanner.Entered.WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken), "the scan of the slow file started");

        var result = await Child.CatAsync(other);

        Assert.Equal((0, "other"), (result.ExitCode, result.StdOut));
        Assert.False(held.IsCompleted, "the slow file's open is still held by its scan");
        scanner.Open();
        var slowResult = await held.WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken);
        Assert.Equal((0, "slow"), (slowResult.ExitCode, slowResult.StdOut));
        Assert.True(h.Monitor.Engine?.Rescues >= 1);
    }

    [Fact]
    public async Task A_scan_that_never_returns_on_the_reader_does_not_keep_the_monitor_from_stopping()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var stuck = tree.File("data/stuck.txt", "stuck");
        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true, ScanTimeout = TimeSpan.FromSeconds(30) };
        using var scanner = new BlockingScanner(stuck);
        await using var h = await MonitorHarness.StartAsync(tree, options, scanner);
        try
        {
            var held = Child.CatAsync(stuck);
            Assert.True(await scanner.Entered.WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken), "the scan started and blocks its thread");

            await h.Monitor.StopAsync(CancellationToken.None).WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken);

            var result = await held.WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken);
            Assert.Equal((0, "stuck"), (result.ExitCode, result.StdOut)); // the closed group let the open through
        }
        finally
        {
            scanner.Open();
        }
    }
}
