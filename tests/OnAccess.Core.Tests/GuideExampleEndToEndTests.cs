using OnAccess.Config;
using OnAccess.Tests;

namespace OnAccess.Core.Tests;

/// <summary>The guide's four example configurations, end to end on temp trees, as root, with child processes.</summary>
[Collection(nameof(KernelCollection))]
public sealed class GuideExampleEndToEndTests
{
    private const uint User = 1000;

    [Fact]
    public async Task A_mount_path_with_root_excluded_reports_EICAR_read_by_another_user_denies_nothing_and_ignores_root()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101); // 0755: the other user must reach the mount
        var mount = await tree.MountTmpfsAsync("fs");
        var eicar = Path.Combine(mount, "deep", "eicar.com");
        Directory.CreateDirectory(Path.GetDirectoryName(eicar)!);
        File.WriteAllText(eicar, EicarScanner.Eicar);
        var conf = ClamdConf.Parse($"ScanOnAccess yes\nOnAccessMountPath {mount}\nOnAccessExcludeUID 0\n");
        await using var h = await MonitorHarness.StartAsync(tree, conf.ToOnAccessOptions(), new EicarScanner());
        Assert.False(h.Monitor.Plan!.Prevention);

        // Notify-only denies nothing: the other user reads EICAR, and it is reported with that user.
        var asUser = await Child.ReadWhileAliveAsync(User, eicar, async pid =>
        {
            var reported = await h.WaitForAsync(e => e.ProcessId == pid);
            Assert.Equal((eicar, User, ScanVerdict.Infected, AccessDecision.None), (reported.Path, reported.UserId, reported.Verdict, reported.Decision));
        });
        Assert.Equal(EicarScanner.Eicar, asUser);

        var asRoot = await Child.ReadWhileAliveAsync(0, eicar, async pid =>
        {
            var ignored = await h.WaitForAsync(e => e.ProcessId == pid);
            Assert.Equal(DecisionReason.ExcludedUser, ignored.Reason);
            Assert.Null(ignored.Verdict);
        });
        Assert.Equal(EicarScanner.Eicar, asRoot);
    }

    [Fact]
    public async Task B_include_with_two_excludes_and_extra_scanning_ignores_excluded_trees_and_reports_a_new_EICAR_file()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var home = tree.Combine("home");
        var hidden2 = tree.File("home/user2/eicar.com", EicarScanner.Eicar);
        var hidden4 = tree.File("home/user4/sub/eicar.com", EicarScanner.Eicar);
        tree.File("home/user1/readme.txt", "clean");
        var conf = ClamdConf.Parse($"ScanOnAccess yes\nOnAccessIncludePath {home}\nOnAccessExcludePath {home}/user2\nOnAccessExcludePath {home}/user4\nOnAccessExtraScanning yes\n");
        await using var h = await MonitorHarness.StartAsync(tree, conf.ToOnAccessOptions(), new EicarScanner());

        // One child reads both excluded files, then a protected one. Events come in order, so once the last one is
        // decided every event of the first two has been read: there must be none.
        var eventsBefore = h.Monitor.GetStatistics().Events;
        var readme = Path.Combine(home, "user1", "readme.txt");
        var reader = await Child.ShAsync($"cat '{hidden2}' '{hidden4}' '{readme}'");
        Assert.Equal(EicarScanner.Eicar + EicarScanner.Eicar + "clean", reader.StdOut);
        await h.WaitForPathAsync(readme);
        Assert.Equal(1, h.Monitor.GetStatistics().Events - eventsBefore);

        // A new EICAR file in a new subdirectory, written by a child process: reported by extra scanning.
        var created = Path.Combine(home, "user1", "new", "dropped.com");
        var writer = await Child.ShAsync($"mkdir -p '{Path.GetDirectoryName(created)}' && printf '%s' '{EicarScanner.Eicar}' > '{created}'");
        Assert.Equal(0, writer.ExitCode);
        var found = await h.WaitForAsync(e => e.Path == created && e.Verdict == ScanVerdict.Infected);
        Assert.Equal(AccessDecision.None, found.Decision);

        Assert.DoesNotContain(h.Events, e => e.Path is { } p && (p.StartsWith(Path.Combine(home, "user2"), StringComparison.Ordinal) || p.StartsWith(Path.Combine(home, "user4"), StringComparison.Ordinal)));
    }

    [Fact]
    public async Task C_recursive_prevention_denies_EICAR_three_levels_down_allows_clean_files_and_protects_new_directories()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var downloads = tree.Combine("home", "user", "Downloads");
        var deep = tree.File("home/user/Downloads/a/b/c/eicar.com", EicarScanner.Eicar);
        var clean = tree.File("home/user/Downloads/a/b/c/clean.txt", "just text");
        var conf = ClamdConf.Parse($"ScanOnAccess yes\nOnAccessIncludePath {downloads}\nOnAccessPrevention yes\nOnAccessExtraScanning yes\n");
        await using var h = await MonitorHarness.StartAsync(tree, conf.ToOnAccessOptions(), new EicarScanner());

        Assert.True(Child.WasDenied(await Child.CatAsync(deep)));
        var cleanRead = await Child.CatAsync(clean);
        Assert.Equal(0, cleanRead.ExitCode);
        Assert.Equal("just text", cleanRead.StdOut);
        var denied = await h.WaitForAsync(e => e.Path == deep && e.Decision == AccessDecision.Deny);
        Assert.Equal("Eicar-Test-Signature", denied.ThreatName);

        // A directory created after start is protected once the tracker has marked it.
        var marks = h.Monitor.GetStatistics().MarkedDirectories;
        var later = Path.Combine(downloads, "later", "deeper");
        Directory.CreateDirectory(later);
        await h.WaitForMarksAsync(marks + 2);
        var dropped = Path.Combine(later, "eicar.com");
        File.WriteAllText(dropped, EicarScanner.Eicar);
        Assert.True(Child.WasDenied(await Child.CatAsync(dropped)));
    }

    [Fact]
    public async Task D_without_DDD_two_roots_are_protected_at_their_top_level_only()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var top1 = tree.File("home/user/dir1/eicar.com", EicarScanner.Eicar);
        var top2 = tree.File("home/user/dir2/eicar.com", EicarScanner.Eicar);
        var nested = tree.File("home/user/dir1/sub/eicar.com", EicarScanner.Eicar);
        var conf = ClamdConf.Parse($"ScanOnAccess yes\nOnAccessIncludePath {tree.Combine("home/user/dir1")}\nOnAccessIncludePath {tree.Combine("home/user/dir2")}\nOnAccessPrevention yes\nOnAccessDisableDDD yes\n");
        await using var h = await MonitorHarness.StartAsync(tree, conf.ToOnAccessOptions(), new EicarScanner());

        Assert.True(Child.WasDenied(await Child.CatAsync(top1)));
        Assert.True(Child.WasDenied(await Child.CatAsync(top2)));
        var inSub = await Child.CatAsync(nested);
        Assert.Equal(0, inSub.ExitCode);
        Assert.Equal(EicarScanner.Eicar, inSub.StdOut);
    }
}

[CollectionDefinition(nameof(KernelCollection), DisableParallelization = true)]
public sealed class KernelCollection;
