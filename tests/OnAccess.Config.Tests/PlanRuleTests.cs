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
        Assert.Equal([new PlanRoot("/", true)], plan.Roots);
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
        Assert.Equal([new PlanRoot("/home", false)], plan.Roots);
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
        Assert.Equal([new PlanRoot("/", false)], plan.Roots);
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
        Assert.Equal([new PlanRoot("/home", true)], plan.Roots);
        Assert.Empty(plan.ExcludePaths);
    }

    [Fact]
    public void OA1015_duplicate_and_nested_includes_are_merged()
    {
        var plan = Resolve("OnAccessIncludePath /home/user/Downloads\nOnAccessIncludePath /home\nOnAccessIncludePath /home/\nOnAccessIncludePath /srv\n");
        Assert.Equal([new PlanRoot("/home", true), new PlanRoot("/srv", true)], plan.Roots);
        var merged = plan.Diagnostics.Where(d => d.Code == PlanDiagnosticCodes.IncludesMerged).ToList();
        Assert.Equal(2, merged.Count);
        Assert.All(merged, m => Assert.Equal(DiagnosticSeverity.Info, m.Severity));
    }

    [Fact]
    public void OA1015_a_nested_include_below_an_exclusion_stays_a_root_of_its_own()
    {
        var plan = Resolve("OnAccessIncludePath /data\nOnAccessExcludePath /data/a\nOnAccessIncludePath /data/a/b/c\n");
        Assert.Equal([new PlanRoot("/data", true), new PlanRoot("/data/a/b/c", true)], plan.Roots);
        Assert.Equal(["/data/a"], plan.ExcludePaths);
    }

    [Fact]
    public void OA1015_without_DDD_nested_includes_are_independent()
    {
        var plan = Resolve("OnAccessIncludePath /data\nOnAccessIncludePath /data/a\nOnAccessDisableDDD yes\n");
        Assert.Equal([new PlanRoot("/data", false), new PlanRoot("/data/a", false)], plan.Roots);
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
}
