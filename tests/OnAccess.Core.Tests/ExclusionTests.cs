using OnAccess.Tests;

namespace OnAccess.Core.Tests;

[Collection(nameof(KernelCollection))]
public sealed class ExclusionTests
{
    [Theory]
    [InlineData("roo", false)]  // clamonacc compares prefixes, so "roo" would exclude root; OnAccess matches names exactly
    [InlineData("root", true)]
    public async Task ExcludeUname_matches_the_user_name_exactly(string name, bool excluded)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", EicarScanner.Eicar);
        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true, ExcludeUnames = [name] };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());
        var result = await Child.CatAsync(eicar);
        Assert.Equal(!excluded, Child.WasDenied(result));
        var decision = await h.WaitForAsync(e => e.ProcessId == result.Pid);
        Assert.Equal(excluded ? DecisionReason.ExcludedUser : DecisionReason.Scanned, decision.Reason);
    }

    [Fact]
    public async Task Files_under_an_exclude_path_are_never_scanned_even_in_directories_created_later()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        tree.File("data/keep.txt", "x");
        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("data")], ExcludePaths = [tree.Combine("data/private")], Prevention = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());
        var late = tree.File("data/private/deeper/eicar.com", EicarScanner.Eicar);
        Directory.CreateDirectory(tree.Combine("data/public"));
        await h.WaitForMarksAsync(2); // the tracker has caught up with both new directories by now
        Assert.Equal(EicarScanner.Eicar, (await Child.CatAsync(late)).StdOut);
        Assert.Equal(2, h.Monitor.GetStatistics().MarkedDirectories); // data and data/public: private is never marked
    }
}
