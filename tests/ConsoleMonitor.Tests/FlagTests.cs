using System.Globalization;
using System.Security.Cryptography;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>
/// Each flag of docs/consolemonitor.md, end to end: the built program on a temp tree (or a tmpfs it mounts), as root,
/// with an access whose outcome only that flag explains.
/// </summary>
[Collection(nameof(MonitorCollection))]
public sealed class FlagTests
{
    private const string Denied = "Operation not permitted";

    [Fact]
    public async Task Exclude_leaves_a_directory_unheld_while_the_rest_stays_protected()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var skipped = tree.File("data/skip/eicar.com", MonitorProcess.Eicar);
        var held = tree.File("data/eicar.com", MonitorProcess.Eicar);
        // Relative flag paths are made absolute (from the working directory).
        await using var monitor = MonitorProcess.StartIn(tree.Path, "--include", "data", "--exclude", "data/skip", "--prevention");
        await monitor.ReadyAsync();

        Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", skipped)).StdOut);
        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", held)).StdErr, StringComparison.Ordinal);
        Assert.Equal("deny", (await monitor.DecisionForAsync(held)).GetProperty("decision").GetString());
        Assert.DoesNotContain(monitor.Decisions, d => MonitorProcess.PathOf(d) == skipped); // read before the denied one
        var (stopped, exit) = await monitor.StopAsync();
        Assert.Equal(0, exit);
        Assert.Equal(1, stopped.GetProperty("denied").GetInt64());
    }

    [Fact]
    public async Task Mount_watches_a_whole_tmpfs_notify_only()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var mount = await tree.MountTmpfsAsync("fs");
        var deep = Path.Combine(mount, "a", "b", "eicar.com");
        Directory.CreateDirectory(Path.GetDirectoryName(deep)!);
        File.WriteAllText(deep, MonitorProcess.Eicar);
        await using var monitor = MonitorProcess.Start("--mount", mount);
        var ready = await monitor.ReadyAsync();
        Assert.Equal("mount", ready.GetProperty("mode").GetString());
        Assert.False(ready.GetProperty("prevention").GetBoolean());

        Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", deep)).StdOut); // not held
        var decision = await monitor.DecisionForAsync(deep); // two levels down: the mount is watched whole
        Assert.Equal("infected", decision.GetProperty("verdict").GetString());
        Assert.Equal("none", decision.GetProperty("decision").GetString());
        var (stopped, exit) = await monitor.StopAsync();
        Assert.Equal(0, exit);
        Assert.Equal(0, stopped.GetProperty("denied").GetInt64());
    }

    [Fact]
    public async Task Extra_scanning_reports_a_file_written_in_place()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        var written = Path.Combine(data, "written.com");
        await using var monitor = MonitorProcess.Start("--include", data, "--extra-scanning");
        await monitor.ReadyAsync();

        // Written and closed, never opened to read. The open for writing is an event too (its scan may even see the
        // content, racing the writer); only extra scanning reports the file as created or closed after writing.
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/sh", "-c", $"printf '%s' '{MonitorProcess.Eicar}' > '{written}'")).ExitCode);
        var decision = await monitor.WaitForAsync(l => MonitorProcess.Event(l) == "decision" && MonitorProcess.PathOf(l) == written && l.GetProperty("kind").GetString() is "created" or "close-write" && l.GetProperty("verdict").GetString() == "infected");
        Assert.Equal("none", decision.GetProperty("decision").GetString());
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    [Fact]
    public async Task Disable_ddd_protects_the_top_directory_only()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var top = tree.File("data/eicar.com", MonitorProcess.Eicar);
        var nested = tree.File("data/sub/eicar.com", MonitorProcess.Eicar);
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--disable-ddd");
        Assert.False((await monitor.ReadyAsync()).GetProperty("ddd").GetBoolean());

        Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", nested)).StdOut);
        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", top)).StdErr, StringComparison.Ordinal);
        await monitor.DecisionForAsync(top);
        Assert.DoesNotContain(monitor.Decisions, d => MonitorProcess.PathOf(d) == nested); // read before the top one
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    [Fact]
    public async Task Exclude_uid_lets_that_user_read_what_root_is_denied()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101); // nobody may reach the file
        var eicar = tree.File("data/eicar.com", MonitorProcess.Eicar);
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--exclude-uid", "65534");
        await monitor.ReadyAsync();

        var asNobody = await KernelTestSupport.RunAsync("/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/cat", eicar);
        Assert.Equal(MonitorProcess.Eicar, asNobody.StdOut);
        var skipped = await monitor.WaitForAsync(l => MonitorProcess.Event(l) == "decision" && MonitorProcess.PathOf(l) == eicar && l.GetProperty("pid").GetInt32() == asNobody.Pid);
        Assert.Equal(65534u, skipped.GetProperty("uid").GetUInt32());
        Assert.Equal("allow", skipped.GetProperty("decision").GetString());
        Assert.Equal("skipped", skipped.GetProperty("verdict").GetString());
        Assert.Equal("excluded-user", skipped.GetProperty("reason").GetString());

        var asRoot = await KernelTestSupport.RunAsync("/bin/cat", eicar);
        Assert.Contains(Denied, asRoot.StdErr, StringComparison.Ordinal);
        var denied = await monitor.WaitForAsync(l => MonitorProcess.Event(l) == "decision" && l.GetProperty("pid").GetInt32() == asRoot.Pid);
        Assert.Equal(0u, denied.GetProperty("uid").GetUInt32());
        Assert.Equal("deny", denied.GetProperty("decision").GetString());
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    [Fact]
    public async Task Max_file_size_lets_a_larger_file_through_unscanned_and_still_scans_one_at_the_limit()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var atLimit = tree.File("data/at-limit.bin", Filler('a', 1024));
        var over = tree.File("data/over.bin", Filler('b', 1025));
        var signatures = tree.File("sigs.hdb", HdbLine(atLimit, "OnAccess.Test.AtLimit") + HdbLine(over, "OnAccess.Test.Over"));
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--signatures", signatures, "--max-file-size", "1K");
        await monitor.ReadyAsync();

        Assert.Equal(Filler('b', 1025), (await KernelTestSupport.RunAsync("/bin/cat", over)).StdOut);
        var skipped = await monitor.DecisionForAsync(over);
        Assert.Equal("too-large", skipped.GetProperty("reason").GetString());
        Assert.Equal("allow", skipped.GetProperty("decision").GetString());

        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", atLimit)).StdErr, StringComparison.Ordinal); // 1K is 1024 bytes
        Assert.Equal("OnAccess.Test.AtLimit", (await monitor.DecisionForAsync(atLimit)).GetProperty("threat").GetString());
        var (stopped, _) = await monitor.StopAsync();
        Assert.Equal(1, stopped.GetProperty("skipped").GetInt64());
        Assert.Equal(1, stopped.GetProperty("denied").GetInt64());
    }

    [Fact]
    public async Task Builtin_scanner_with_a_signatures_file_denies_what_the_file_names()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var sample = tree.File("data/sample.bin", "a file only our signature names " + Guid.NewGuid());
        var signatures = tree.File("sigs.hdb", HdbLine(sample, "OnAccess.Test.Builtin"));
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--scanner", "builtin", "--signatures", signatures);
        Assert.Equal("builtin", (await monitor.ReadyAsync()).GetProperty("scanner").GetString());

        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", sample)).StdErr, StringComparison.Ordinal);
        var decision = await monitor.DecisionForAsync(sample);
        Assert.Equal("OnAccess.Test.Builtin", decision.GetProperty("threat").GetString());
        Assert.Equal("deny", decision.GetProperty("decision").GetString());
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    [Fact]
    public async Task Clamd_scanner_at_the_clamd_endpoint_denies_what_only_clamd_knows()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var sample = tree.File("data/sample.bin", "a file only clamd's database names " + Guid.NewGuid());
        await using var clamd = await ClamdProcess.StartAsync(tree, [HdbLine(sample, "OnAccess.Test.Clamd")]);
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--scanner", "clamd", "--clamd", clamd.Endpoint);
        Assert.Equal("clamd", (await monitor.ReadyAsync()).GetProperty("scanner").GetString());

        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", sample)).StdErr, StringComparison.Ordinal);
        var decision = await monitor.DecisionForAsync(sample);
        Assert.StartsWith("OnAccess.Test.Clamd", decision.GetProperty("threat").GetString(), StringComparison.Ordinal); // clamd adds .UNOFFICIAL
        Assert.Equal("deny", decision.GetProperty("decision").GetString());
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    [Fact]
    public async Task No_cache_scans_every_open_of_the_same_file_again()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var clean = tree.File("data/clean.txt", "fine");
        var sentinel = tree.File("data/sentinel.txt", "last");
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--no-cache");
        await monitor.ReadyAsync();

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("fine", (await KernelTestSupport.RunAsync("/bin/cat", clean)).StdOut);
        }

        Assert.Equal("last", (await KernelTestSupport.RunAsync("/bin/cat", sentinel)).StdOut);
        await monitor.DecisionForAsync(sentinel); // after the three opens' decisions, had they come
        var opens = monitor.Decisions.Where(d => MonitorProcess.PathOf(d) == clean).ToList();
        Assert.Equal(["scanned", "scanned", "scanned"], opens.Select(d => d.GetProperty("reason").GetString()));
        var (stopped, _) = await monitor.StopAsync();
        Assert.Equal(4, stopped.GetProperty("scans").GetInt64());
    }

    [Fact]
    public async Task Quiet_prints_ready_and_stopped_but_no_decision()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", MonitorProcess.Eicar);
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--quiet");
        await monitor.ReadyAsync();

        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).StdErr, StringComparison.Ordinal);
        var (stopped, exit) = await monitor.StopAsync();
        Assert.Equal(0, exit);
        Assert.Equal(1, stopped.GetProperty("denied").GetInt64()); // the denial happened ...
        Assert.Empty(monitor.Decisions); // ... and printed no line
        Assert.Equal(["ready", "stopped"], monitor.Seen.Select(MonitorProcess.Event));
    }

    private static string Filler(char c, int length) => new(c, length);

    /// <summary>A ClamAV .hdb line: md5:size:name.</summary>
    internal static string HdbLine(string file, string name)
    {
        var bytes = File.ReadAllBytes(file);
#pragma warning disable CA5351 // ClamAV's .hdb format is MD5: identification, not security
        return string.Create(CultureInfo.InvariantCulture, $"{Convert.ToHexStringLower(MD5.HashData(bytes))}:{bytes.Length}:{name}\n");
#pragma warning restore CA5351
    }
}
