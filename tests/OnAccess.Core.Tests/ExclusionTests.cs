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

    /// <summary>
    /// The attack: a user makes a mount namespace of their own (unprivileged user namespaces), bind-mounts a protected
    /// directory over an excluded one there, and opens the file through it: the kernel's path of the open is then the
    /// excluded one. A path is believed only when it leads, in the monitor's own namespace, to the very file and mount.
    /// </summary>
    [Fact]
    public async Task An_exclude_path_a_user_fakes_with_a_bind_mount_in_a_namespace_of_their_own_excludes_nothing()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
        var eicar = tree.File("data/in/eicar.com", EicarScanner.Eicar);
        var excluded = tree.Combine("data/private");
        Directory.CreateDirectory(excluded);
        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("data")], ExcludePaths = [excluded], Prevention = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());
        var result = await KernelTestSupport.RunAsync(
            "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/unshare", "-Urm", "/bin/sh", "-c",
            $"mount --bind '{Path.GetDirectoryName(eicar)}' '{excluded}' && cat '{excluded}/eicar.com'");
        Assert.DoesNotContain("mount", result.StdErr, StringComparison.Ordinal); // the bind mount itself worked
        Assert.NotEqual(EicarScanner.Eicar, result.StdOut);
        Assert.True(Child.WasDenied(result), result.StdErr);
        var decision = await h.WaitForAsync(e => e.Path?.EndsWith("/eicar.com", StringComparison.Ordinal) == true);
        Assert.Equal(DecisionReason.Scanned, decision.Reason);
    }
}
