using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>The built ConsoleMonitor on each of the guide's four example configurations (temp paths), as root.</summary>
[Collection(nameof(MonitorCollection))]
public sealed class GuideExampleTests
{
    private static string Conf(KernelTestSupport.TempTree tree, string text) => tree.File("clamd.conf", text);

    [Fact]
    public async Task A_mount_path_reports_EICAR_read_by_another_user_and_denies_nothing()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
        var mount = await tree.MountTmpfsAsync("fs");
        var eicar = Path.Combine(mount, "eicar.com");
        File.WriteAllText(eicar, MonitorProcess.Eicar);
        await using var monitor = MonitorProcess.Start("--config", Conf(tree, $"ScanOnAccess yes\nOnAccessMountPath {mount}\nOnAccessExcludeUID 0\n"));
        var ready = await monitor.ReadyAsync();
        Assert.Equal("mount", ready.GetProperty("mode").GetString());
        Assert.False(ready.GetProperty("prevention").GetBoolean());

        // The reader stays alive until its decision is seen: the UID of a notify-only access is read from the live process.
        using var reader = await HeldChild.StartAsync(["/usr/bin/setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"], $"read -r line < '{eicar}'; echo \"$line\"");
        var decision = await monitor.WaitForAsync(l => l.GetProperty("event").GetString() == "decision" && l.GetProperty("path").GetString() == eicar && l.GetProperty("uid").ValueKind == System.Text.Json.JsonValueKind.Number && l.GetProperty("uid").GetUInt32() == 1000);
        Assert.Equal(reader.Pid, decision.GetProperty("pid").GetInt32());
        Assert.Equal(MonitorProcess.Eicar + "\n", (await reader.ReleaseAsync()).StdOut); // read whole: nothing was held
        Assert.Equal("infected", decision.GetProperty("verdict").GetString());
        Assert.Equal("none", decision.GetProperty("decision").GetString());
        Assert.Equal("Eicar-Test-Signature", decision.GetProperty("threat").GetString());
        var (stopped, exit) = await monitor.StopAsync();
        Assert.Equal(0, exit);
        Assert.Equal(0, stopped.GetProperty("denied").GetInt64());
    }

    [Fact]
    public async Task B_excluded_directories_are_silent_and_a_new_EICAR_file_is_reported()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var home = tree.Combine("home");
        var hidden = tree.File("home/user2/eicar.com", MonitorProcess.Eicar);
        var other = tree.File("home/user4/x.txt", "x");
        var sentinel = tree.File("home/user1/readme.txt", "hi");
        await using var monitor = MonitorProcess.Start("--config", Conf(tree, $"ScanOnAccess yes\nOnAccessIncludePath {home}\nOnAccessExcludePath {home}/user2\nOnAccessExcludePath {home}/user4\nOnAccessExtraScanning yes\n"));
        await monitor.ReadyAsync();

        // Both excluded files are really read (the premise), then the watched sentinel: its decision comes after any
        // the excluded opens would have caused, so by then their absence means they were not seen.
        Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", hidden)).StdOut);
        Assert.Equal("x", (await KernelTestSupport.RunAsync("/bin/cat", other)).StdOut);
        Assert.Equal("hi", (await KernelTestSupport.RunAsync("/bin/cat", sentinel)).StdOut);
        Assert.Equal("clean", (await monitor.DecisionForAsync(sentinel)).GetProperty("verdict").GetString());
        Assert.DoesNotContain(monitor.Decisions, l => IsUnder(l, home, "user2") || IsUnder(l, home, "user4"));

        var dropped = Path.Combine(home, "user1", "new", "dropped.com");
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/sh", "-c", $"mkdir -p '{Path.GetDirectoryName(dropped)}' && printf '%s' '{MonitorProcess.Eicar}' > '{dropped}'")).ExitCode);
        var found = await monitor.WaitForAsync(l => l.GetProperty("event").GetString() == "decision" && l.GetProperty("path").GetString() == dropped && l.GetProperty("verdict").GetString() == "infected");
        Assert.Equal("none", found.GetProperty("decision").GetString());
        Assert.Contains(found.GetProperty("kind").GetString(), new[] { "created", "close-write", "open" });
        await monitor.StopAsync();
        Assert.DoesNotContain(monitor.Decisions, l => IsUnder(l, home, "user2") || IsUnder(l, home, "user4"));
    }

    private static bool IsUnder(System.Text.Json.JsonElement decision, string home, string user) =>
        MonitorProcess.PathOf(decision)?.StartsWith(Path.Combine(home, user) + "/", StringComparison.Ordinal) == true;

    [Fact]
    public async Task C_recursive_prevention_denies_deep_EICAR_and_allows_clean_files()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var downloads = tree.Combine("Downloads");
        var eicar = tree.File("Downloads/a/b/c/eicar.com", MonitorProcess.Eicar);
        var clean = tree.File("Downloads/a/clean.txt", "fine");
        await using var monitor = MonitorProcess.Start("--config", Conf(tree, $"ScanOnAccess yes\nOnAccessIncludePath {downloads}\nOnAccessPrevention yes\nOnAccessExtraScanning yes\n"));
        var ready = await monitor.ReadyAsync();
        Assert.True(ready.GetProperty("prevention").GetBoolean());
        var denied = await KernelTestSupport.RunAsync("/bin/cat", eicar);
        Assert.Contains("Operation not permitted", denied.StdErr, StringComparison.Ordinal);
        Assert.Equal("fine", (await KernelTestSupport.RunAsync("/bin/cat", clean)).StdOut);
        var decision = await monitor.DecisionForAsync(eicar);
        Assert.Equal("deny", decision.GetProperty("decision").GetString());
        Assert.Equal(denied.Pid, decision.GetProperty("pid").GetInt32());
        var (stopped, exit) = await monitor.StopAsync();
        Assert.Equal(0, exit);
        Assert.Equal(1, stopped.GetProperty("denied").GetInt64());
    }

    [Fact]
    public async Task D_without_DDD_only_the_top_levels_are_protected()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var top = tree.File("dir1/eicar.com", MonitorProcess.Eicar);
        var nested = tree.File("dir2/sub/eicar.com", MonitorProcess.Eicar);
        await using var monitor = MonitorProcess.Start("--config", Conf(tree, $"ScanOnAccess yes\nOnAccessIncludePath {tree.Combine("dir1")}\nOnAccessIncludePath {tree.Combine("dir2")}\nOnAccessPrevention yes\nOnAccessDisableDDD yes\n"));
        var ready = await monitor.ReadyAsync();
        Assert.False(ready.GetProperty("ddd").GetBoolean());
        Assert.Contains("Operation not permitted", (await KernelTestSupport.RunAsync("/bin/cat", top)).StdErr, StringComparison.Ordinal);
        Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", nested)).StdOut);
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    [Fact]
    public async Task A_start_up_failure_prints_the_reason_without_a_stack_trace_and_exits_2()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var result = await MonitorProcess.RunAsync("--include", tree.Combine("missing"), "--prevention");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("OA1008", result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.StdErr, StringComparison.Ordinal);
    }
}

[CollectionDefinition(nameof(MonitorCollection), DisableParallelization = true)]
public sealed class MonitorCollection;
