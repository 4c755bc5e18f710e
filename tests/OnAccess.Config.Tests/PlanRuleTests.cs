using Microsoft.Extensions.Configuration;

namespace OnAccess.Config.Tests;

/// <summary>One test per precedence or validation rule of the plan.</summary>
public sealed class PlanRuleTests
{
    private static readonly FakePlanEnvironment Env = new FakePlanEnvironment()
        .Dir("/home", "/home/user", "/home/user/Downloads", "/home/user2", "/data", "/data/a", "/data/a/b", "/data/a/b/c", "/srv");

    private static OnAccessPlan Resolve(string conf, FakePlanEnvironment? env = null)
    {
        var parsed = ClamdConf.Parse(conf, "test.conf");
        return OnAccessPlan.Resolve(parsed.ToOnAccessOptions(), parsed, env ?? Env);
    }

    private static PlanDiagnostic Single(OnAccessPlan plan, string code) => Assert.Single(plan.Diagnostics, d => d.Code == code);

    [Fact]
    public void OA1001_ScanOnAccess_no_disables_everything_and_ignores_the_rest()
    {
        var plan = Resolve("ScanOnAccess no\nOnAccessIncludePath /\nOnAccessMaxThreads 0\n");
        Assert.False(plan.Enabled);
        Assert.Equal(OnAccessMode.Disabled, plan.Mode);
        Assert.Empty(plan.Roots);
        Assert.False(plan.HasErrors);
        var d = Single(plan, PlanDiagnosticCodes.Disabled);
        Assert.Equal(DiagnosticSeverity.Info, d.Severity);
        Assert.Equal(1, d.Line);
        Assert.Contains("ScanOnAccess", d.Directives);
    }

    [Fact]
    public void OA1002_ScanOnAccess_absent_means_enabled()
    {
        var plan = Resolve("OnAccessIncludePath /srv\n");
        Assert.True(plan.Enabled);
        Assert.Equal(DiagnosticSeverity.Info, Single(plan, PlanDiagnosticCodes.EnabledByDefault).Severity);
        Assert.DoesNotContain(Resolve("ScanOnAccess yes\nOnAccessIncludePath /srv\n").Diagnostics, d => d.Code == PlanDiagnosticCodes.EnabledByDefault);
    }

    [Fact]
    public void OA1003_MountPath_turns_off_prevention_and_DDD_and_warns_for_each_ignored_directive()
    {
        var plan = Resolve("OnAccessMountPath /\nOnAccessIncludePath /home\nOnAccessExcludePath /home/user\nOnAccessExtraScanning yes\nOnAccessPrevention yes\nOnAccessDisableDDD yes\n");
        Assert.Equal(OnAccessMode.MountPaths, plan.Mode);
        Assert.False(plan.Prevention);
        Assert.False(plan.DynamicDirectoryDetermination);
        Assert.False(plan.ExtraScanning);
        Assert.Empty(plan.ExcludePaths);
        Assert.Equal([new PlanRoot("/", true, RootMarking.Mount)], plan.Roots);
        var warnings = plan.Diagnostics.Where(d => d.Code == PlanDiagnosticCodes.IgnoredByMountPath).ToList();
        Assert.All(warnings, w => Assert.Equal(DiagnosticSeverity.Warning, w.Severity));
        Assert.Equal(
            ["OnAccessIncludePath", "OnAccessExcludePath", "OnAccessExtraScanning", "OnAccessPrevention", "OnAccessDisableDDD"],
            warnings.Select(w => w.Directives[0]));
        Assert.Equal([2, 3, 4, 5, 6], warnings.Select(w => w.Line ?? 0));
    }

    [Fact]
    public void OA1003_is_silent_when_nothing_else_is_set()
    {
        Assert.DoesNotContain(Resolve("OnAccessMountPath /\n").Diagnostics, d => d.Code == PlanDiagnosticCodes.IgnoredByMountPath);
    }

    [Fact]
    public void OA1004_DisableDDD_ignores_exclude_paths_and_extra_scanning()
    {
        var plan = Resolve("OnAccessIncludePath /home\nOnAccessExcludePath /home/user\nOnAccessExtraScanning yes\nOnAccessDisableDDD yes\n");
        Assert.Empty(plan.ExcludePaths);
        Assert.False(plan.ExtraScanning);
        var warnings = plan.Diagnostics.Where(d => d.Code == PlanDiagnosticCodes.IgnoredWithoutDdd).ToList();
        Assert.Equal(["OnAccessExcludePath", "OnAccessExtraScanning"], warnings.Select(w => w.Directives[0]));
        Assert.All(warnings, w => Assert.Equal(DiagnosticSeverity.Warning, w.Severity));
    }

    [Fact]
    public void OA1005_DisableDDD_watches_include_paths_non_recursively()
    {
        var plan = Resolve("OnAccessIncludePath /home\nOnAccessDisableDDD yes\nOnAccessPrevention yes\n");
        Assert.False(plan.DynamicDirectoryDetermination);
        Assert.True(plan.Prevention);
        Assert.Equal([new PlanRoot("/home", false, RootMarking.Directory)], plan.Roots);
        Assert.Equal(DiagnosticSeverity.Info, Single(plan, PlanDiagnosticCodes.NonRecursiveIncludes).Severity);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("//")]
    [InlineData("/.")]
    [InlineData("/home/..")]
    [InlineData("///./")]
    public void OA1006_root_as_an_include_with_DDD_is_an_error_however_spelled(string root)
    {
        var plan = Resolve($"OnAccessIncludePath {root}\n");
        Assert.True(plan.HasErrors);
        var d = Single(plan, PlanDiagnosticCodes.RootInclude);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(1, d.Line);
        Assert.Equal("OnAccessIncludePath", d.Directives[0]);
    }

    [Fact]
    public void OA1006_root_without_DDD_is_allowed_non_recursively()
    {
        var plan = Resolve("OnAccessIncludePath /\nOnAccessDisableDDD yes\n");
        Assert.False(plan.HasErrors);
        Assert.Equal([new PlanRoot("/", false, RootMarking.Directory)], plan.Roots);
    }

    [Fact]
    public void OA1007_enabled_with_nothing_to_watch_is_an_error()
    {
        var plan = Resolve("OnAccessPrevention yes\n");
        Assert.True(plan.HasErrors);
        var d = Single(plan, PlanDiagnosticCodes.NothingToWatch);
        Assert.Contains("OnAccessIncludePath", d.Directives);
        Assert.Contains("OnAccessMountPath", d.Directives);
    }

    [Fact]
    public void OA1008_a_missing_include_path_is_an_error()
    {
        var d = Single(Resolve("OnAccessIncludePath /srv\nOnAccessIncludePath /nope\n"), PlanDiagnosticCodes.PathMissing);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(2, d.Line);
        Assert.Contains("/nope", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OA1008_a_missing_mount_path_is_an_error()
    {
        Assert.Equal(DiagnosticSeverity.Error, Single(Resolve("OnAccessMountPath /nope\n"), PlanDiagnosticCodes.PathMissing).Severity);
    }

    [Fact]
    public void OA1008_an_include_path_that_cannot_be_examined_is_an_error_that_says_so()
    {
        var env = new FakePlanEnvironment().Dir("/srv");
        env.Paths["/locked/data"] = PathKind.Inaccessible;
        var plan = Resolve("OnAccessIncludePath /srv\nOnAccessIncludePath /locked/data\n", env);
        var d = Single(plan, PlanDiagnosticCodes.PathMissing);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(2, d.Line);
        Assert.Equal("OnAccessIncludePath", d.Directives[0]);
        Assert.Contains("OnAccessIncludePath /locked/data cannot be examined", d.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("does not exist", d.Message, StringComparison.Ordinal);
        Assert.Equal([new PlanRoot("/srv", true, RootMarking.DirectoryTree)], plan.Roots);
    }

    [Fact]
    public void OA1008_a_mount_path_that_cannot_be_examined_is_an_error_even_when_mountinfo_lists_it()
    {
        var env = new FakePlanEnvironment().Dir("/srv");
        env.Paths["/locked/mnt"] = PathKind.Inaccessible;
        env.MountPoints.UnionWith(["/srv", "/locked/mnt"]);
        var plan = Resolve("OnAccessMountPath /srv\nOnAccessMountPath /locked/mnt\n", env);
        var d = Single(plan, PlanDiagnosticCodes.PathMissing);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(2, d.Line);
        Assert.Equal("OnAccessMountPath", d.Directives[0]);
        Assert.Contains("OnAccessMountPath /locked/mnt cannot be examined", d.Message, StringComparison.Ordinal);
        Assert.Equal([new PlanRoot("/srv", true, RootMarking.Mount)], plan.Roots);
    }

    [Fact]
    public void OA1009_an_include_path_that_is_a_file_is_an_error()
    {
        var env = new FakePlanEnvironment();
        env.Paths["/etc/passwd"] = PathKind.Other;
        Assert.Equal(DiagnosticSeverity.Error, Single(Resolve("OnAccessIncludePath /etc/passwd\n", env), PlanDiagnosticCodes.NotADirectory).Severity);
    }

    [Fact]
    public void OA1010_an_include_path_that_is_a_symlink_is_an_error()
    {
        var env = new FakePlanEnvironment();
        env.Paths["/link"] = PathKind.SymbolicLink;
        var d = Single(Resolve("OnAccessIncludePath /link\n", env), PlanDiagnosticCodes.SymbolicLink);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Contains("never followed", d.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("OnAccessIncludePath home/user")]
    [InlineData("OnAccessIncludePath ./home")]
    [InlineData("OnAccessMountPath mnt")]
    [InlineData("OnAccessIncludePath /home\nOnAccessExcludePath user")]
    public void OA1011_a_relative_path_is_an_error(string conf)
    {
        var d = Single(Resolve(conf + "\n"), PlanDiagnosticCodes.RelativePath);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Contains("absolute", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OA1012_a_mount_path_that_is_not_a_mount_point_is_an_error()
    {
        var d = Single(Resolve("OnAccessMountPath /home\n"), PlanDiagnosticCodes.NotAMountPoint);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Contains("mountinfo", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OA1013_an_exclude_outside_every_include_is_a_warning_and_dropped()
    {
        var plan = Resolve("OnAccessIncludePath /home\nOnAccessExcludePath /srv\n");
        Assert.Equal(DiagnosticSeverity.Warning, Single(plan, PlanDiagnosticCodes.ExcludeOutsideIncludes).Severity);
        Assert.Empty(plan.ExcludePaths);
        Assert.False(plan.HasErrors);
    }

    [Fact]
    public void OA1014_an_exclude_equal_to_an_include_is_a_warning_and_the_include_stays_protected()
    {
        var plan = Resolve("OnAccessIncludePath /home\nOnAccessExcludePath /home/\n");
        Assert.Equal(DiagnosticSeverity.Warning, Single(plan, PlanDiagnosticCodes.ExcludeEqualsInclude).Severity);
        Assert.Equal([new PlanRoot("/home", true, RootMarking.DirectoryTree)], plan.Roots);
        Assert.Empty(plan.ExcludePaths);
    }

    [Fact]
    public void OA1015_duplicate_and_nested_includes_are_merged()
    {
        var plan = Resolve("OnAccessIncludePath /home/user/Downloads\nOnAccessIncludePath /home\nOnAccessIncludePath /home/\nOnAccessIncludePath /srv\n");
        Assert.Equal([new PlanRoot("/home", true, RootMarking.DirectoryTree), new PlanRoot("/srv", true, RootMarking.DirectoryTree)], plan.Roots);
        var merged = plan.Diagnostics.Where(d => d.Code == PlanDiagnosticCodes.IncludesMerged).ToList();
        Assert.Equal(2, merged.Count);
        Assert.All(merged, m => Assert.Equal(DiagnosticSeverity.Info, m.Severity));
    }

    [Fact]
    public void OA1015_a_nested_include_below_an_exclusion_stays_a_root_of_its_own()
    {
        var plan = Resolve("OnAccessIncludePath /data\nOnAccessExcludePath /data/a\nOnAccessIncludePath /data/a/b/c\n");
        Assert.Equal([new PlanRoot("/data", true, RootMarking.DirectoryTree), new PlanRoot("/data/a/b/c", true, RootMarking.DirectoryTree)], plan.Roots);
        Assert.Equal(["/data/a"], plan.ExcludePaths);
    }

    [Fact]
    public void OA1015_without_DDD_nested_includes_are_independent()
    {
        var plan = Resolve("OnAccessIncludePath /data\nOnAccessIncludePath /data/a\nOnAccessDisableDDD yes\n");
        Assert.Equal([new PlanRoot("/data", false, RootMarking.Directory), new PlanRoot("/data/a", false, RootMarking.Directory)], plan.Roots);
    }

    [Fact]
    public void OA1022_a_recursive_include_that_is_a_whole_filesystem_gets_one_filesystem_mark()
    {
        var env = new FakePlanEnvironment().Dir("/srv", "/srv/www", "/data", "/data/cache", "/bound", "/flat");
        env.MountPoints.UnionWith(["/srv", "/data", "/bound", "/flat"]);
        env.WholeFilesystems["/srv"] = "xfs";
        env.WholeFilesystems["/data"] = "ext4";
        env.WholeFilesystems["/flat"] = "tmpfs";
        var plan = Resolve("OnAccessIncludePath /srv/\nOnAccessIncludePath /srv/www\nOnAccessIncludePath /data\nOnAccessExcludePath /data/cache\nOnAccessIncludePath /bound\n", env);
        Assert.False(plan.HasErrors);

        // /srv is a whole filesystem with nothing excluded: one filesystem mark (its nested include merged into it).
        // /data is one too, but an exclusion lies below it; /bound is a mount point that is not its filesystem's root.
        Assert.Equal(
            [new PlanRoot("/srv", true, RootMarking.Filesystem), new PlanRoot("/data", true, RootMarking.DirectoryTree), new PlanRoot("/bound", true, RootMarking.DirectoryTree)],
            plan.Roots);
        var d = Single(plan, PlanDiagnosticCodes.FilesystemMark);
        Assert.Equal(DiagnosticSeverity.Info, d.Severity);
        Assert.Equal(1, d.Line);
        Assert.Equal("OnAccessIncludePath", d.Directives[0]);
        Assert.Contains("OnAccessIncludePath /srv/ is the root of a whole xfs filesystem", d.Message, StringComparison.Ordinal);

        // Without DDD a whole filesystem is still one directory's files; a mount path is a mount mark.
        var flat = Resolve("OnAccessIncludePath /flat\nOnAccessDisableDDD yes\n", env);
        Assert.Equal([new PlanRoot("/flat", false, RootMarking.Directory)], flat.Roots);
        Assert.DoesNotContain(flat.Diagnostics, x => x.Code == PlanDiagnosticCodes.FilesystemMark);
        var mount = Resolve("OnAccessMountPath /flat\n", env);
        Assert.Equal([new PlanRoot("/flat", true, RootMarking.Mount)], mount.Roots);
        Assert.DoesNotContain(mount.Diagnostics, x => x.Code == PlanDiagnosticCodes.FilesystemMark);
    }

    [Fact]
    public void OA1025_tree_marking_filesystem_gives_each_recursive_include_one_mark_on_its_filesystem_and_says_so()
    {
        var env = new FakePlanEnvironment().Dir("/srv", "/data", "/data/a", "/data/b", "/flat");
        env.MountPoints.UnionWith(["/srv", "/flat"]);
        env.WholeFilesystems["/srv"] = "xfs";
        const string Conf = "OnAccessIncludePath /srv\nOnAccessIncludePath /data/a\nOnAccessIncludePath /data/b\nOnAccessExcludePath /data/a/tmp\n";
        var options = ClamdConf.Parse(Conf).ToOnAccessOptions();
        options.TreeMarking = TreeMarking.Filesystem;
        var plan = OnAccessPlan.Resolve(options, ClamdConf.Parse(Conf), env);
        Assert.False(plan.HasErrors);

        // A whole filesystem keeps its own mark (OA1022); every other recursive root, exclusions below it or not, is held
        // by the mark on the filesystem that holds it.
        Assert.Equal(
            [new PlanRoot("/srv", true, RootMarking.Filesystem), new PlanRoot("/data/a", true, RootMarking.FilesystemSubtree), new PlanRoot("/data/b", true, RootMarking.FilesystemSubtree)],
            plan.Roots);
        var d = plan.Diagnostics.Where(x => x.Code == PlanDiagnosticCodes.FilesystemSubtreeMark).ToList();
        Assert.Equal([2, 3], d.Select(x => x.Line));
        Assert.All(d, x => Assert.Equal(DiagnosticSeverity.Info, x.Severity));
        Assert.Contains("OnAccessIncludePath /data/a is protected by one mark on the ext4 filesystem that holds it (tree marking 'filesystem')", d[0].Message, StringComparison.Ordinal);

        // The default, and roots that are not recursive, are marked as before.
        Assert.DoesNotContain(Resolve(Conf, env).Diagnostics, x => x.Code == PlanDiagnosticCodes.FilesystemSubtreeMark);
        options.DisableDdd = true;
        var flat = OnAccessPlan.Resolve(options, null, env);
        Assert.All(flat.Roots, r => Assert.Equal(RootMarking.Directory, r.Marking));
        Assert.DoesNotContain(flat.Diagnostics, x => x.Code == PlanDiagnosticCodes.FilesystemSubtreeMark);
    }

    [Fact]
    public void OA1022_an_include_kept_below_an_exclusion_is_marked_directory_by_directory()
    {
        var env = new FakePlanEnvironment().Dir("/data", "/data/a", "/data/a/mnt");
        env.MountPoints.UnionWith(["/data", "/data/a/mnt"]);
        env.WholeFilesystems["/data/a/mnt"] = "tmpfs";
        var plan = Resolve("OnAccessIncludePath /data\nOnAccessExcludePath /data/a\nOnAccessIncludePath /data/a/mnt\n", env);
        Assert.Equal([new PlanRoot("/data", true, RootMarking.DirectoryTree), new PlanRoot("/data/a/mnt", true, RootMarking.DirectoryTree)], plan.Roots);
        Assert.DoesNotContain(plan.Diagnostics, x => x.Code == PlanDiagnosticCodes.FilesystemMark);
    }

    [Fact]
    public void OA1015_duplicate_mount_paths_are_watched_once()
    {
        var env = new FakePlanEnvironment().Dir("/srv", "/data");
        env.MountPoints.UnionWith(["/srv", "/data"]);
        var plan = Resolve("OnAccessMountPath /srv\nOnAccessMountPath /data\nOnAccessMountPath /srv/\n", env);
        Assert.False(plan.HasErrors);
        Assert.Equal([new PlanRoot("/srv", true, RootMarking.Mount), new PlanRoot("/data", true, RootMarking.Mount)], plan.Roots);
        var d = Single(plan, PlanDiagnosticCodes.IncludesMerged);
        Assert.Equal(DiagnosticSeverity.Info, d.Severity);
        Assert.Equal(3, d.Line);
        Assert.Equal("OnAccessMountPath", d.Directives[0]);
        Assert.Contains("OnAccessMountPath /srv/ is listed more than once", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OA1016_MaxFileSize_zero_means_unlimited()
    {
        var plan = Resolve("OnAccessIncludePath /srv\nOnAccessMaxFileSize 0\n");
        Assert.Null(plan.MaxFileSize);
        Assert.Equal(DiagnosticSeverity.Info, Single(plan, PlanDiagnosticCodes.UnlimitedFileSize).Severity);
        Assert.Equal(5L << 20, Resolve("OnAccessIncludePath /srv\n").MaxFileSize);
    }

    [Fact]
    public void OA1017_MaxThreads_zero_is_an_error()
    {
        var d = Single(Resolve("OnAccessIncludePath /srv\nOnAccessMaxThreads 0\n"), PlanDiagnosticCodes.NoThreads);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(2, d.Line);
    }

    [Theory]
    [InlineData(256)]
    [InlineData(1000)]
    public void OA1018_RetryAttempts_over_255_is_an_error(int retries)
    {
        var d = Single(Resolve($"OnAccessIncludePath /srv\nOnAccessRetryAttempts {retries}\n"), PlanDiagnosticCodes.RetryAttemptsOutOfRange);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(255, Resolve("OnAccessIncludePath /srv\nOnAccessRetryAttempts 255\n").RetryAttempts);
    }

    [Fact]
    public void OA1019_a_zero_scan_timeout_is_an_error()
    {
        Assert.Equal(DiagnosticSeverity.Error, Single(Resolve("OnAccessIncludePath /srv\nOnAccessCurlTimeout 0\n"), PlanDiagnosticCodes.NoScanTimeout).Severity);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void OA1017_negative_MaxThreads_set_in_code_is_an_error(int threads)
    {
        var plan = OnAccessPlan.Resolve(new OnAccessOptions { IncludePaths = ["/srv"], MaxThreads = threads }, null, Env);
        var d = NegativeIsTheOnlyError(plan, PlanDiagnosticCodes.NoThreads, "OnAccessMaxThreads");
        Assert.Contains($"OnAccessMaxThreads is {threads}:", d.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void OA1018_negative_RetryAttempts_set_in_code_is_an_error(int retries)
    {
        var plan = OnAccessPlan.Resolve(new OnAccessOptions { IncludePaths = ["/srv"], RetryAttempts = retries }, null, Env);
        var d = NegativeIsTheOnlyError(plan, PlanDiagnosticCodes.RetryAttemptsOutOfRange, "OnAccessRetryAttempts");
        Assert.Contains($"OnAccessRetryAttempts is {retries};", d.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void OA1019_a_negative_scan_timeout_set_in_code_is_an_error(int milliseconds)
    {
        var plan = OnAccessPlan.Resolve(new OnAccessOptions { IncludePaths = ["/srv"], ScanTimeout = TimeSpan.FromMilliseconds(milliseconds) }, null, Env);
        NegativeIsTheOnlyError(plan, PlanDiagnosticCodes.NoScanTimeout, "OnAccessCurlTimeout");
    }

    /// <summary>clamd.conf cannot spell -1 (ClamdConfSyntaxTests), but configuration binding can: the plan still refuses it.</summary>
    [Fact]
    public void OA1017_OA1018_OA1019_negative_values_bound_from_configuration_are_errors()
    {
        var options = new OnAccessOptions();
        new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OnAccess:IncludePaths:0"] = "/srv",
            ["OnAccess:MaxThreads"] = "-1",
            ["OnAccess:RetryAttempts"] = "-1",
            ["OnAccess:ScanTimeout"] = "-00:00:00.001",
        }).Build().GetSection("OnAccess").Bind(options);
        var plan = OnAccessPlan.Resolve(options, null, Env);
        Assert.Equal(
            [PlanDiagnosticCodes.NoThreads, PlanDiagnosticCodes.RetryAttemptsOutOfRange, PlanDiagnosticCodes.NoScanTimeout],
            plan.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.Code));
    }

    private static PlanDiagnostic NegativeIsTheOnlyError(OnAccessPlan plan, string code, string directive)
    {
        var d = Assert.Single(plan.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
        Assert.Equal(code, d.Code);
        Assert.Equal([directive], d.Directives);
        Assert.Null(d.Line);
        return d;
    }

    [Fact]
    public void OA1020_a_negative_size_set_in_code_is_an_error()
    {
        var options = new OnAccessOptions { IncludePaths = ["/srv"], MaxFileSize = -1 };
        var plan = OnAccessPlan.Resolve(options, null, Env);
        Assert.Equal(DiagnosticSeverity.Error, Single(plan, PlanDiagnosticCodes.NegativeFileSize).Severity);
        Assert.Null(Single(plan, PlanDiagnosticCodes.NegativeFileSize).Line);
    }

    [Fact]
    public void OA1021_nested_and_duplicate_excludes_are_merged()
    {
        var plan = Resolve("OnAccessIncludePath /data\nOnAccessExcludePath /data/a\nOnAccessExcludePath /data/a/b\nOnAccessExcludePath /data/a/\n");
        Assert.Equal(["/data/a"], plan.ExcludePaths);
        Assert.Equal(2, plan.Diagnostics.Count(d => d.Code == PlanDiagnosticCodes.ExcludesMerged));
    }

    [Fact]
    public void OA2007_a_repeated_ExcludeUID_is_used_once_with_a_warning_at_each_repeated_line()
    {
        var plan = Resolve("OnAccessIncludePath /srv\nOnAccessExcludeUID 1000\nOnAccessExcludeUID 33\nOnAccessExcludeUID 01000\nOnAccessExcludeUID 1000\n");
        Assert.False(plan.HasErrors);
        Assert.Equal([1000u, 33u], plan.ExcludeUids);
        var repeats = plan.Diagnostics.Where(d => d.Code == PlanDiagnosticCodes.DuplicateValue).ToList();
        Assert.Equal([4, 5], repeats.Select(d => d.Line ?? 0));
        Assert.All(repeats, d =>
        {
            Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
            Assert.Equal(["OnAccessExcludeUID"], d.Directives);
            Assert.Equal("test.conf", d.FilePath);
            Assert.Contains("OnAccessExcludeUID 1000 is given more than once", d.Message, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void OA2007_a_repeated_ExcludeUname_is_used_once_and_names_are_compared_exactly()
    {
        var plan = Resolve("OnAccessIncludePath /srv\nOnAccessExcludeUname clamav\nOnAccessExcludeUname Clamav\nOnAccessExcludeUname clamav\n");
        Assert.Equal(["clamav", "Clamav"], plan.ExcludeUnames);
        var d = Single(plan, PlanDiagnosticCodes.DuplicateValue);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
        Assert.Equal(4, d.Line);
        Assert.Equal(["OnAccessExcludeUname"], d.Directives);
        Assert.Contains("OnAccessExcludeUname 'clamav' is given more than once", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OA2007_a_repeat_added_after_the_file_was_read_has_no_line_and_distinct_values_are_silent()
    {
        var conf = ClamdConf.Parse("OnAccessIncludePath /srv\nOnAccessExcludeUID 7\nOnAccessExcludeUname backup\n", "test.conf");
        var options = conf.ToOnAccessOptions();
        Assert.DoesNotContain(OnAccessPlan.Resolve(options, conf, Env).Diagnostics, d => d.Code == PlanDiagnosticCodes.DuplicateValue);

        options.ExcludeUids.Add(7); // as ConsoleMonitor's --exclude-uid 7 does
        var plan = OnAccessPlan.Resolve(options, conf, Env);
        var d = Single(plan, PlanDiagnosticCodes.DuplicateValue);
        Assert.Null(d.Line);
        Assert.Contains("OnAccessExcludeUID 7 ", d.Message, StringComparison.Ordinal);
        Assert.Equal([7u], plan.ExcludeUids);
    }

    [Theory]
    [InlineData("/home/", "/home")]
    [InlineData("/home//user/./Downloads/", "/home/user/Downloads")]
    [InlineData("/home/user/../user2", "/home/user2")]
    public void Paths_are_normalised_once(string raw, string normalized)
    {
        Assert.Equal(normalized, Assert.Single(Resolve($"OnAccessIncludePath {raw}\n").Roots).Path);
    }

    [Fact]
    public void Excluded_uids_include_root_when_root_is_excluded_and_plan_answers_path_exclusion()
    {
        var plan = Resolve("OnAccessIncludePath /data\nOnAccessExcludeRootUID yes\nOnAccessExcludeUID 1000\nOnAccessExcludeUID 1000\nOnAccessExcludePath /data/a\nOnAccessExcludeUname clamav\n");
        Assert.Equal([0u, 1000u], plan.ExcludeUids);
        Assert.Equal(4, Single(plan, PlanDiagnosticCodes.DuplicateValue).Line); // the repeated 1000 is no longer silent
        Assert.Equal(["clamav"], plan.ExcludeUnames);
        Assert.True(plan.IsExcluded("/data/a"));
        Assert.True(plan.IsExcluded("/data/a/x/y"));
        Assert.False(plan.IsExcluded("/data/ab"));
        Assert.False(plan.IsExcluded("/data"));
    }

    [Fact]
    public void ThrowIfInvalid_lists_every_error_with_file_and_line()
    {
        var plan = Resolve("OnAccessIncludePath /nope\nOnAccessMaxThreads 0\n");
        var e = Assert.Throws<OnAccessPlanException>(plan.ThrowIfInvalid);
        Assert.Equal(2, e.Errors.Count);
        Assert.Contains("test.conf:1: error OA1008", e.Message, StringComparison.Ordinal);
        Assert.Contains("test.conf:2: error OA1017", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Values_copied_to_the_plan()
    {
        var plan = Resolve("OnAccessIncludePath /srv\nOnAccessMaxThreads 9\nOnAccessRetryAttempts 2\nOnAccessDenyOnError yes\nOnAccessCurlTimeout 250\nOnAccessPrevention yes\nOnAccessExtraScanning yes\n");
        Assert.Equal(9, plan.MaxThreads);
        Assert.Equal(2, plan.RetryAttempts);
        Assert.True(plan.DenyOnError);
        Assert.Equal(TimeSpan.FromMilliseconds(250), plan.ScanTimeout);
        Assert.True(plan.Prevention);
        Assert.True(plan.ExtraScanning);
        Assert.True(plan.DynamicDirectoryDetermination);
    }

    /// <summary>
    /// OA1023: an include path that is clamd's TemporaryDirectory (or DatabaseDirectory) is refused: clamd writes its
    /// INSTREAM files there while it scans, and holding those opens deadlocks the scan that makes them.
    /// </summary>
    [Theory]
    [InlineData("TemporaryDirectory")]
    [InlineData("DatabaseDirectory")]
    public void OA1023_an_include_path_that_is_the_scanner_s_own_directory_is_an_error(string directive)
    {
        var plan = Resolve($"{directive} /data/a\nOnAccessIncludePath /data/a\nOnAccessIncludePath /srv\nOnAccessPrevention yes\n");
        var d = Single(plan, PlanDiagnosticCodes.ScannerDirectoryIncluded);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Equal(2, d.Line);
        Assert.Contains(directive, d.Message, StringComparison.Ordinal);
        Assert.True(plan.HasErrors);
        Assert.Equal(["/srv"], plan.Roots.Select(r => r.Path));
    }

    /// <summary>OA1024: an include or mount path that holds the scanner's own directory excludes it, with a warning.</summary>
    [Fact]
    public void OA1024_a_path_that_holds_the_scanner_s_own_directories_excludes_them()
    {
        var plan = Resolve("TemporaryDirectory /data/a/b\nDatabaseDirectory /srv\nOnAccessIncludePath /data\nOnAccessExcludePath /data/a/b/c\n");
        Assert.False(plan.HasErrors);
        Assert.Contains("/data/a/b", plan.ExcludePaths);
        Assert.DoesNotContain("/data/a/b/c", plan.ExcludePaths); // inside the scanner's directory: merged into it
        var d = Single(plan, PlanDiagnosticCodes.ScannerDirectoryExcluded);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
        Assert.Contains("TemporaryDirectory /data/a/b", d.Message, StringComparison.Ordinal);

        var env = new FakePlanEnvironment().Dir("/mnt", "/mnt/tmp");
        env.MountPoints.Add("/mnt");
        var mount = Resolve("TemporaryDirectory /mnt/tmp\nOnAccessMountPath /mnt\n", env);
        Assert.Equal(["/mnt/tmp"], mount.ExcludePaths);
        Assert.Equal(DiagnosticSeverity.Warning, Single(mount, PlanDiagnosticCodes.ScannerDirectoryExcluded).Severity);

        // Without a clamd.conf naming them, or with the directories elsewhere, nothing changes.
        Assert.Empty(Resolve("TemporaryDirectory /home\nOnAccessIncludePath /data\n").ExcludePaths);
    }
}
