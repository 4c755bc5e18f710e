using OnAccess.Tests;

namespace OnAccess.Core.Tests;

/// <summary>
/// A recursive include path that is a whole filesystem (here a private tmpfs) with nothing excluded below it is
/// protected by one filesystem mark instead of a mark per directory. The marks are read from this process's
/// fanotify fdinfo: "fanotify sdev:" lines are filesystem marks, "fanotify ino:" lines inode marks.
/// </summary>
[Collection(nameof(KernelCollection))]
public sealed class WholeFilesystemTests
{
    [Fact]
    public async Task A_whole_filesystem_is_protected_by_one_filesystem_mark_down_to_directories_made_later()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var fs = await tree.MountTmpfsAsync("fs");
        var deep = tree.File("fs/a/b/c/eicar.com", EicarScanner.Eicar);
        var clean = tree.File("fs/a/clean.txt", "fine");
        var options = new Config.OnAccessOptions { IncludePaths = [fs], Prevention = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());

        var (filesystemMarks, inodeMarks) = FanotifyMarks();
        Assert.Equal((1, 0), (filesystemMarks, inodeMarks));
        Assert.True(Child.WasDenied(await Child.CatAsync(deep)));
        Assert.Equal("fine", (await Child.CatAsync(clean)).StdOut);

        var later = Path.Combine(fs, "made", "later");
        Directory.CreateDirectory(later);
        var fresh = Path.Combine(later, "eicar.com");
        await File.WriteAllTextAsync(fresh, EicarScanner.Eicar, TestContext.Current.CancellationToken);
        Assert.True(Child.WasDenied(await Child.CatAsync(fresh)));
        Assert.Equal(1, FanotifyMarks().Filesystem);
    }

    [Fact]
    public async Task A_filesystem_mounted_below_it_keeps_directory_marks_and_stays_protected()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var fs = await tree.MountTmpfsAsync("fs");
        var inner = await tree.MountTmpfsAsync("fs/inner");
        var eicar = tree.File("fs/inner/deep/eicar.com", EicarScanner.Eicar);
        var options = new Config.OnAccessOptions { IncludePaths = [fs], Prevention = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());

        Assert.True(Child.WasDenied(await Child.CatAsync(eicar)));
        var (filesystemMarks, inodeMarks) = FanotifyMarks();
        Assert.Equal(1, filesystemMarks);
        Assert.Equal(2, inodeMarks); // inner and inner/deep: another filesystem
        Assert.NotEqual((await KernelTestSupport.RunAsync("/usr/bin/stat", "-c", "%d", fs)).StdOut, (await KernelTestSupport.RunAsync("/usr/bin/stat", "-c", "%d", inner)).StdOut); // the premise: inner is another filesystem
    }

    [Fact]
    public async Task An_exclusion_below_it_keeps_directory_marks_and_the_excluded_directory_unscanned()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var fs = await tree.MountTmpfsAsync("fs");
        var skipped = tree.File("fs/skip/eicar.com", EicarScanner.Eicar);
        var guarded = tree.File("fs/keep/eicar.com", EicarScanner.Eicar);
        var options = new Config.OnAccessOptions { IncludePaths = [fs], ExcludePaths = [Path.Combine(fs, "skip")], Prevention = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());

        Assert.Equal(0, FanotifyMarks().Filesystem);
        Assert.Equal(EicarScanner.Eicar, (await Child.CatAsync(skipped)).StdOut);
        Assert.True(Child.WasDenied(await Child.CatAsync(guarded)));
    }

    [Fact]
    public async Task A_directory_of_a_filesystem_is_not_a_whole_filesystem()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var fs = await tree.MountTmpfsAsync("fs");
        var eicar = tree.File("fs/sub/dir/eicar.com", EicarScanner.Eicar);
        var options = new Config.OnAccessOptions { IncludePaths = [Path.Combine(fs, "sub")], Prevention = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());

        Assert.Equal((0, 2), FanotifyMarks()); // sub and sub/dir
        Assert.True(Child.WasDenied(await Child.CatAsync(eicar)));
    }

    [Fact]
    public async Task A_bind_mount_of_a_subdirectory_is_not_a_whole_filesystem_and_files_outside_it_stay_unscanned()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        await tree.MountTmpfsAsync("fs");
        var outside = tree.File("fs/outside/eicar.com", EicarScanner.Eicar);
        tree.File("fs/shown/x/eicar.com", EicarScanner.Eicar);
        var bind = await tree.BindMountAsync(tree.Combine("fs/shown"), "bind");
        var options = new Config.OnAccessOptions { IncludePaths = [bind], Prevention = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());

        Assert.Equal(0, FanotifyMarks().Filesystem);
        Assert.True(Child.WasDenied(await Child.CatAsync(Path.Combine(bind, "x", "eicar.com"))));
        Assert.Equal(EicarScanner.Eicar, (await Child.CatAsync(outside)).StdOut);
    }

    /// <summary>The filesystem and inode marks of this process's fanotify groups (the tests run one monitor at a time).</summary>
    private static (int Filesystem, int Inode) FanotifyMarks()
    {
        var lines = KernelTestSupport.FdInfoLines(Environment.ProcessId, "anon_inode:[fanotify]");
        return (lines.Count(l => l.StartsWith("fanotify sdev:", StringComparison.Ordinal)), lines.Count(l => l.StartsWith("fanotify ino:", StringComparison.Ordinal)));
    }
}
