using System.Text.Json;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

public sealed class CheckConfigTests
{
    private static async Task<(JsonElement Plan, int ExitCode)> CheckAsync(string conf)
    {
        var result = await MonitorProcess.RunAsync("check-config", conf, "--json");
        return (JsonDocument.Parse(result.StdOut).RootElement.Clone(), result.ExitCode);
    }

    private static string[] Codes(JsonElement plan) => [.. plan.GetProperty("diagnostics").EnumerateArray().Select(d => d.GetProperty("code").GetString()!)];

    [Fact]
    public async Task The_four_examples_print_their_plans_and_codes()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        foreach (var d in new[] { "home/user2", "home/user4", "home/user/Downloads", "home/user/dir1", "home/user/dir2" })
        {
            Directory.CreateDirectory(tree.Combine(d));
        }

        var (a, exitA) = await CheckAsync(tree.File("a.conf", "ScanOnAccess yes\nOnAccessMountPath /\nOnAccessExcludeUID 0\n"));
        Assert.Equal(0, exitA);
        Assert.Equal("mount", a.GetProperty("mode").GetString());
        Assert.False(a.GetProperty("prevention").GetBoolean());
        Assert.Equal(["OA2003", "OA2005"], Codes(a));
        Assert.Equal("mount", Assert.Single(a.GetProperty("roots").EnumerateArray()).GetProperty("marking").GetString());

        var home = tree.Combine("home");
        var (b, exitB) = await CheckAsync(tree.File("b.conf", $"ScanOnAccess yes\nOnAccessIncludePath {home}\nOnAccessExcludePath {home}/user2\nOnAccessExcludePath {home}/user4\nOnAccessExtraScanning yes\n"));
        Assert.Equal(0, exitB);
        Assert.Equal("include", b.GetProperty("mode").GetString());
        Assert.True(b.GetProperty("ddd").GetBoolean());
        Assert.True(b.GetProperty("extraScanning").GetBoolean());
        Assert.Equal([$"{home}/user2", $"{home}/user4"], b.GetProperty("excludePaths").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(5242880, b.GetProperty("maxFileSize").GetInt64());

        var (c, _) = await CheckAsync(tree.File("c.conf", $"ScanOnAccess yes\nOnAccessIncludePath {home}/user/Downloads\nOnAccessPrevention yes\nOnAccessExtraScanning yes\nOnAccessMaxFileSize 0\n"));
        Assert.True(c.GetProperty("prevention").GetBoolean());
        Assert.Equal(JsonValueKind.Null, c.GetProperty("maxFileSize").ValueKind);
        Assert.Contains("OA1016", Codes(c));
        var root = Assert.Single(c.GetProperty("roots").EnumerateArray());
        Assert.True(root.GetProperty("recursive").GetBoolean());
        Assert.Equal("directoryTree", root.GetProperty("marking").GetString());

        var (d2, _) = await CheckAsync(tree.File("d.conf", $"ScanOnAccess yes\nOnAccessIncludePath {home}/user/dir1\nOnAccessIncludePath {home}/user/dir2\nOnAccessPrevention yes\nOnAccessDisableDDD yes\n"));
        Assert.False(d2.GetProperty("ddd").GetBoolean());
        Assert.All(d2.GetProperty("roots").EnumerateArray(), r => Assert.False(r.GetProperty("recursive").GetBoolean()));
        Assert.All(d2.GetProperty("roots").EnumerateArray(), r => Assert.Equal("directory", r.GetProperty("marking").GetString()));
        var info = Assert.Single(d2.GetProperty("diagnostics").EnumerateArray(), x => x.GetProperty("code").GetString() == "OA1005");
        Assert.Equal("info", info.GetProperty("severity").GetString());
        Assert.Equal(5, info.GetProperty("line").GetInt32());
    }

    [Fact]
    public async Task Each_root_says_how_it_is_marked_and_a_whole_filesystem_is_OA1022()
    {
        KernelTestSupport.RequireRoot(); // to mount the tmpfs
        using var tree = KernelTestSupport.CreateTempTree();
        var fs = await tree.MountTmpfsAsync("fs");
        var plain = tree.Combine("plain");
        Directory.CreateDirectory(plain);
        var conf = tree.File("m.conf", $"OnAccessIncludePath {fs}\nOnAccessIncludePath {plain}\nOnAccessPrevention yes\n");

        var (plan, exit) = await CheckAsync(conf);
        Assert.Equal(0, exit);
        Assert.Equal(
            [(fs, "filesystem"), (plain, "directoryTree")],
            plan.GetProperty("roots").EnumerateArray().Select(r => (r.GetProperty("path").GetString(), r.GetProperty("marking").GetString())));
        var d = Assert.Single(plan.GetProperty("diagnostics").EnumerateArray(), x => x.GetProperty("code").GetString() == "OA1022");
        Assert.Equal("info", d.GetProperty("severity").GetString());
        Assert.Equal(1, d.GetProperty("line").GetInt32());

        var text = await MonitorProcess.RunAsync("check-config", conf);
        Assert.Contains($"watch: {fs} (and every subdirectory), one filesystem mark", text.StdOut, StringComparison.Ordinal);
        Assert.Contains($"watch: {plain} (and every subdirectory), marked directory by directory", text.StdOut, StringComparison.Ordinal);
        Assert.Contains("OA1022", text.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tree_marking_filesystem_is_shown_for_each_root_with_OA1025()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        var conf = tree.File("m.conf", $"OnAccessIncludePath {data}\nOnAccessPrevention yes\n");

        var result = await MonitorProcess.RunAsync("check-config", conf, "--json", "--tree-marking", "filesystem");
        Assert.Equal(0, result.ExitCode);
        var plan = JsonDocument.Parse(result.StdOut).RootElement;
        Assert.Equal("filesystemSubtree", Assert.Single(plan.GetProperty("roots").EnumerateArray()).GetProperty("marking").GetString());
        Assert.Contains("OA1025", Codes(plan));

        var text = await MonitorProcess.RunAsync("check-config", conf, "--tree-marking", "filesystem");
        Assert.Contains($"watch: {data} (and every subdirectory), one mark on the filesystem that holds it", text.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("OA1025", (await MonitorProcess.RunAsync("check-config", conf)).StdOut, StringComparison.Ordinal);

        var bad = await MonitorProcess.RunAsync("check-config", conf, "--tree-marking", "inodes");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--tree-marking 'inodes' is not one of directories, filesystem.", bad.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_plan_error_exits_1_and_names_directive_and_line()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var (plan, exit) = await CheckAsync(tree.File("e.conf", "OnAccessPrevention yes\nOnAccessIncludePath /\n"));
        Assert.Equal(1, exit);
        var error = Assert.Single(plan.GetProperty("diagnostics").EnumerateArray(), d => d.GetProperty("severity").GetString() == "error");
        Assert.Equal("OA1006", error.GetProperty("code").GetString());
        Assert.Equal(2, error.GetProperty("line").GetInt32());
        Assert.Equal("OnAccessIncludePath", error.GetProperty("directives")[0].GetString());
    }

    [Fact]
    public async Task An_invalid_file_names_file_line_and_directive_and_exits_1()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var conf = tree.File("bad.conf", "# ok\nOnAccessMaxThreads -1\n");
        var (plan, exit) = await CheckAsync(conf);
        Assert.Equal(1, exit);
        Assert.Equal(conf, plan.GetProperty("file").GetString());
        var error = Assert.Single(plan.GetProperty("diagnostics").EnumerateArray());
        Assert.Equal(2, error.GetProperty("line").GetInt32());
        Assert.Equal("OnAccessMaxThreads", error.GetProperty("directives")[0].GetString());

        var text = await MonitorProcess.RunAsync("check-config", conf);
        Assert.Equal(1, text.ExitCode);
        Assert.Contains($"{conf}:2: OnAccessMaxThreads:", text.StdErr, StringComparison.Ordinal); // an error, on stderr
        Assert.Equal(string.Empty, text.StdOut);
    }

    /// <summary>
    /// OA1008 from the real environment: an include path its user may not examine (below a directory of mode 000, seen
    /// as nobody) is refused, not watched, and the message says it cannot be examined (before: "does not exist", as
    /// EACCES was taken for ENOENT).
    /// </summary>
    [Fact]
    public async Task An_include_path_its_user_may_not_examine_is_OA1008_and_check_config_exits_1()
    {
        KernelTestSupport.RequireRoot(); // to become nobody
        using var tree = KernelTestSupport.CreateTempTree();
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
        var data = tree.Combine("locked", "data");
        Directory.CreateDirectory(data);
        File.SetUnixFileMode(tree.Combine("locked"), UnixFileMode.None);
        var conf = tree.File("clamd.conf", $"OnAccessIncludePath {tree.Path}\nOnAccessIncludePath {data}\n");
        File.SetUnixFileMode(conf, (UnixFileMode)0b110_100_100);

        var result = await MonitorProcess.RunAsAsync("nobody", "nogroup", "/nonexistent", "check-config", conf, "--json");
        Assert.Equal(1, result.ExitCode);
        var plan = JsonDocument.Parse(result.StdOut).RootElement;
        var error = Assert.Single(plan.GetProperty("diagnostics").EnumerateArray(), d => d.GetProperty("severity").GetString() == "error");
        Assert.Equal("OA1008", error.GetProperty("code").GetString());
        Assert.Equal(2, error.GetProperty("line").GetInt32());
        Assert.Equal($"OnAccessIncludePath {data} cannot be examined (permission denied or I/O error).", error.GetProperty("message").GetString());
        Assert.Equal([tree.Path], plan.GetProperty("roots").EnumerateArray().Select(r => r.GetProperty("path").GetString()));
    }

    /// <summary>Before: a --signatures file that did not exist was a warning, and the monitor ran with EICAR only.</summary>
    [Fact]
    public async Task A_missing_signature_file_stops_start_up_naming_it()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var result = await MonitorProcess.RunAsync("--include", tree.Path, "--signatures", tree.Combine("missing.hdb"));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(tree.Combine("missing.hdb"), result.StdErr, StringComparison.Ordinal);
    }

    /// <summary>Before: a path on procfs with prevention blamed the kernel ("built without CONFIG_FANOTIFY_ACCESS_PERMISSIONS").</summary>
    [Fact]
    public async Task A_path_on_a_filesystem_without_permission_events_is_named_with_its_type()
    {
        KernelTestSupport.RequireRoot();
        var result = await MonitorProcess.RunAsync("--include", "/proc/sys", "--prevention");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("'/proc/sys'", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("proc filesystem", result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("CONFIG_FANOTIFY_ACCESS_PERMISSIONS", result.StdErr, StringComparison.Ordinal);
    }

    /// <summary>
    /// Issue 20, item 2: check-config on a clamd.conf whose include path is its TemporaryDirectory says OA1023 and exits
    /// 1; one whose include path is a parent of it excludes it with OA1024.
    /// </summary>
    [Fact]
    public async Task The_scanner_s_own_temporary_directory_is_refused_as_an_include_path_and_excluded_below_one()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var temporary = tree.Combine("data/clamd-tmp");
        Directory.CreateDirectory(temporary);
        var exact = tree.File("exact.conf", $"TemporaryDirectory {temporary}\nOnAccessIncludePath {temporary}\n");
        var (plan, exit) = await CheckAsync(exact);
        Assert.Equal(1, exit);
        Assert.Contains(plan.GetProperty("diagnostics").EnumerateArray(), d => d.GetProperty("code").GetString() == "OA1023" && d.GetProperty("severity").GetString() == "error");

        var parent = tree.File("parent.conf", $"TemporaryDirectory {temporary}\nOnAccessIncludePath {tree.Combine("data")}\n");
        (plan, exit) = await CheckAsync(parent);
        Assert.Equal(0, exit);
        Assert.Contains(plan.GetProperty("diagnostics").EnumerateArray(), d => d.GetProperty("code").GetString() == "OA1024" && d.GetProperty("severity").GetString() == "warning");
        Assert.Equal([temporary], plan.GetProperty("excludePaths").EnumerateArray().Select(e => e.GetString()));
    }
}
