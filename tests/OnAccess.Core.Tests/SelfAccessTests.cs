using OnAccess.Tests;

namespace OnAccess.Core.Tests;

[Collection(nameof(KernelCollection))]
public sealed class SelfAccessTests
{
    [Fact]
    public async Task A_scanner_that_opens_files_in_the_protected_directory_by_path_does_not_deadlock()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var neighbour = tree.File("data/neighbour.txt", "next door");
        var target = tree.File("data/target.txt", "target");
        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true, ScanTimeout = TimeSpan.FromSeconds(10) };
        await using var h = await MonitorHarness.StartAsync(tree, options, new PathReadingScanner(neighbour));

        var result = await Child.CatAsync(target);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("target", result.StdOut);
        var decision = await h.WaitForPathAsync(target);
        Assert.Equal(DecisionReason.Scanned, decision.Reason);
        Assert.Equal(ScanVerdict.Clean, decision.Verdict);
    }
}
