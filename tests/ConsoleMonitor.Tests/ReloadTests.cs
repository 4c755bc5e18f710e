using System.Text.Json;
using OnAccess.ClamAV.Tests;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>
/// SIGHUP (issue 16, item 2): the clamd.conf is read again and applied without a gap; the "reloaded" line names
/// each change; an invalid file is refused and the running configuration stays; clamd's endpoints can move.
/// </summary>
[Collection(nameof(MonitorCollection))]
public sealed class ReloadTests
{
    private const string Denied = "Operation not permitted";

    [Fact]
    public async Task SIGHUP_applies_an_edited_clamd_conf_and_names_each_change()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
        var (a, b) = (tree.Combine("a"), tree.Combine("b"));
        var inA = tree.File("a/eicar.com", MonitorProcess.Eicar);
        var inB = tree.File("b/sub/eicar.com", MonitorProcess.Eicar);
        var large = tree.File("b/large.com", MonitorProcess.Eicar + new string('\n', 2000));
        foreach (var path in new[] { a, inA })
        {
            File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        }

        var conf = tree.File("clamd.conf", $"OnAccessIncludePath {a}\nOnAccessPrevention yes\n");
        await using var monitor = MonitorProcess.Start("--config", conf);
        await monitor.ReadyAsync();
        Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", inB)).StdOut);

        File.WriteAllText(conf, $"OnAccessIncludePath {a}\nOnAccessIncludePath {b}\nOnAccessPrevention yes\nOnAccessExcludeUID 65534\nOnAccessMaxFileSize 1K\n");
        await monitor.SignalAsync("HUP");
        var reloaded = await monitor.WaitForAsync(l => MonitorProcess.Event(l) is "reloaded" or "reload-refused");
        Assert.Equal("reloaded", MonitorProcess.Event(reloaded));
        var changes = reloaded.GetProperty("changes").EnumerateArray().Select(Change).ToList();
        Assert.Equal(["OnAccessMaxFileSize 5242880 -> 1024", "OnAccessIncludePath + " + b, "OnAccessExcludeUID + 65534"], changes);
        Assert.Equal(3, reloaded.GetProperty("markedDirectories").GetInt64()); // a, b, b/sub

        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", inB)).StdErr, StringComparison.Ordinal); // added
        Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/bin/cat", inA)).StdOut); // its user excluded
        Assert.StartsWith(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", large)).StdOut, StringComparison.Ordinal); // over the new size
        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", inA)).StdErr, StringComparison.Ordinal);
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    [Fact]
    public async Task SIGHUP_with_an_invalid_file_is_refused_and_the_running_configuration_stays()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var inA = tree.File("a/eicar.com", MonitorProcess.Eicar);
        var conf = tree.File("clamd.conf", $"OnAccessIncludePath {tree.Combine("a")}\nOnAccessPrevention yes\n");
        await using var monitor = MonitorProcess.Start("--config", conf);
        await monitor.ReadyAsync();

        File.WriteAllText(conf, $"OnAccessIncludePath {tree.Combine("a")}\nOnAccessPrevention no\nOnAccessMaxThreads 0\n");
        await monitor.SignalAsync("HUP");
        var refused = await monitor.WaitForAsync(l => MonitorProcess.Event(l) is "reloaded" or "reload-refused");
        Assert.Equal("reload-refused", MonitorProcess.Event(refused));
        Assert.Matches($@"^{System.Text.RegularExpressions.Regex.Escape(conf)}:3: error OA\d+: OnAccessMaxThreads is 0", refused.GetProperty("reason").GetString());
        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", inA)).StdErr, StringComparison.Ordinal); // prevention stays on

        File.WriteAllText(conf, "OnAccessIncludePath\n"); // a directive without its value: the file cannot be read
        await monitor.SignalAsync("HUP");
        refused = await monitor.WaitForAsync(l => MonitorProcess.Event(l) is "reloaded" || (MonitorProcess.Event(l) == "reload-refused" && l.GetProperty("reason").GetString()!.StartsWith(conf + ":1:", StringComparison.Ordinal)));
        Assert.Equal("reload-refused", MonitorProcess.Event(refused));
        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", inA)).StdErr, StringComparison.Ordinal);
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    [Fact]
    public async Task SIGHUP_moves_from_include_paths_to_a_mount_path()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var mount = await tree.MountTmpfsAsync("fs");
        var deep = Path.Combine(mount, "x", "eicar.com");
        Directory.CreateDirectory(Path.GetDirectoryName(deep)!);
        File.WriteAllText(deep, MonitorProcess.Eicar);
        var inA = tree.File("a/eicar.com", MonitorProcess.Eicar);
        var conf = tree.File("clamd.conf", $"OnAccessIncludePath {tree.Combine("a")}\nOnAccessPrevention yes\n");
        await using var monitor = MonitorProcess.Start("--config", conf);
        await monitor.ReadyAsync();

        File.WriteAllText(conf, $"OnAccessMountPath {mount}\n");
        await monitor.SignalAsync("HUP");
        var reloaded = await monitor.WaitForAsync(l => MonitorProcess.Event(l) is "reloaded" or "reload-refused");
        Assert.Equal("reloaded", MonitorProcess.Event(reloaded));
        Assert.Equal(["OnAccessPrevention yes -> no", "OnAccessIncludePath - " + tree.Combine("a"), "OnAccessMountPath + " + mount], reloaded.GetProperty("changes").EnumerateArray().Select(Change));
        Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", inA)).StdOut);
        Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", deep)).StdOut); // notify-only
        var decision = await monitor.DecisionForAsync(deep);
        Assert.Equal("infected", decision.GetProperty("verdict").GetString());
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    /// <summary>The clamd.conf's LocalSocket moves to another clamd: after SIGHUP the new one scans (its own signature is denied, the old one's is not).</summary>
    [Fact]
    public async Task SIGHUP_follows_clamd_to_a_new_socket()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        using var first = KernelTestSupport.CreateTempTree();
        using var second = KernelTestSupport.CreateTempTree();
        var onlyFirst = tree.File("data/first.bin", "known to the first clamd only\n");
        var onlySecond = tree.File("data/second.bin", "known to the second clamd only\n");
        await using var clamd1 = await ClamdProcess.StartAsync(first, [FlagTests.HdbLine(onlyFirst, "OnAccess.Test.First")]);
        await using var clamd2 = await ClamdProcess.StartAsync(second, [FlagTests.HdbLine(onlySecond, "OnAccess.Test.Second")]);
        var conf = tree.File("clamd.conf", $"LocalSocket {clamd1.Endpoint["unix:".Length..]}\nOnAccessIncludePath {tree.Combine("data")}\nOnAccessPrevention yes\n");
        await using var monitor = MonitorProcess.Start("--config", conf, "--no-cache");
        await monitor.ReadyAsync();
        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", onlyFirst)).StdErr, StringComparison.Ordinal);
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/cat", onlySecond)).ExitCode);

        File.WriteAllText(conf, $"LocalSocket {clamd2.Endpoint["unix:".Length..]}\nOnAccessIncludePath {tree.Combine("data")}\nOnAccessPrevention yes\n");
        await monitor.SignalAsync("HUP");
        var reloaded = await monitor.WaitForAsync(l => MonitorProcess.Event(l) is "reloaded" or "reload-refused");
        Assert.Equal("reloaded", MonitorProcess.Event(reloaded));
        Assert.Equal([clamd2.Endpoint], reloaded.GetProperty("clamd").EnumerateArray().Select(e => e.GetString()));
        Assert.Contains("Scanner", reloaded.GetProperty("changes").EnumerateArray().Select(c => c.GetProperty("directive").GetString()));
        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", onlySecond)).StdErr, StringComparison.Ordinal);
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/cat", onlyFirst)).ExitCode);
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    private static string Change(JsonElement c)
    {
        var (directive, before, after) = (c.GetProperty("directive").GetString(), c.GetProperty("before").GetString(), c.GetProperty("after").GetString());
        return before is null ? $"{directive} + {after}" : after is null ? $"{directive} - {before}" : $"{directive} {before} -> {after}";
    }
}
