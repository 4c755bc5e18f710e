using System.Text.Json;
using OnAccess.ClamAV.Tests;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>
/// clamonacc's --move, --copy and --remove, the quarantine commands, and clamd.conf's VirusEvent, end to end (issue 17):
/// the action lines, and list, restore and delete on what was quarantined.
/// </summary>
[Collection(nameof(MonitorCollection))]
public sealed class ActionFlagTests
{
    [Fact]
    public async Task Move_writes_an_action_line_and_quarantine_lists_restores_and_deletes()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", MonitorProcess.Eicar);
        File.SetUnixFileMode(eicar, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var store = tree.Combine("store");
        await using (var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--move", store))
        {
            await monitor.ReadyAsync();
            Assert.NotEqual(0, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).ExitCode);
            var action = await monitor.WaitForAsync(l => MonitorProcess.Event(l) == "action");
            Assert.Equal(("quarantine", "done", eicar, "Eicar-Test-Signature"), (action.GetProperty("action").GetString(), action.GetProperty("outcome").GetString(), MonitorProcess.PathOf(action), action.GetProperty("threat").GetString()));
            Assert.False(File.Exists(eicar));
            var (stopped, exit) = await monitor.StopAsync();
            Assert.Equal(0, exit);
            Assert.Equal(1, stopped.GetProperty("denied").GetInt64());
        }

        var list = await MonitorProcess.RunAsync("quarantine", "list", "--store", store, "--json");
        Assert.Equal(0, list.ExitCode);
        var entry = Assert.Single(JsonDocument.Parse(list.StdOut).RootElement.EnumerateArray());
        var id = entry.GetProperty("id").GetString()!;
        Assert.Equal((eicar, "0640", "move", true), (entry.GetProperty("originalPath").GetString(), entry.GetProperty("mode").GetString(), entry.GetProperty("action").GetString(), entry.GetProperty("originalRemoved").GetBoolean()));

        var restore = await MonitorProcess.RunAsync("quarantine", "restore", id, "--store", store);
        Assert.Equal(0, restore.ExitCode);
        Assert.Equal(MonitorProcess.Eicar, File.ReadAllText(eicar));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(eicar));
        var again = await MonitorProcess.RunAsync("quarantine", "restore", id, "--store", store);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("has no entry", again.StdErr, StringComparison.Ordinal);

        // --copy keeps the original; delete drops the entry.
        await using (var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--copy", store))
        {
            await monitor.ReadyAsync();
            Assert.Equal(MonitorProcess.Eicar, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).StdOut);
            Assert.Equal("done", (await monitor.WaitForAsync(l => MonitorProcess.Event(l) == "action")).GetProperty("outcome").GetString());
            Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
        }

        var copied = Assert.Single(JsonDocument.Parse((await MonitorProcess.RunAsync("quarantine", "list", "--store", store, "--json")).StdOut).RootElement.EnumerateArray());
        Assert.Equal("copy", copied.GetProperty("action").GetString());
        Assert.Equal(0, (await MonitorProcess.RunAsync("quarantine", "delete", copied.GetProperty("id").GetString()!, "--store", store)).ExitCode);
        Assert.Equal("[]", (await MonitorProcess.RunAsync("quarantine", "list", "--store", store, "--json")).StdOut.Trim());
        Assert.True(File.Exists(eicar));
    }

    [Fact]
    public async Task Remove_deletes_the_file_and_a_clamd_conf_VirusEvent_runs_without_a_shell()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/$(touch canary).com", MonitorProcess.Eicar);
        var conf = tree.File("clamd.conf", $"OnAccessIncludePath {tree.Combine("data")}\nOnAccessPrevention yes\nVirusEvent /usr/bin/touch \"{tree.Combine("ran")}-%v\"\n");
        await using var monitor = MonitorProcess.StartIn(tree.Path, "--config", conf, "--remove");
        await monitor.ReadyAsync();
        Assert.NotEqual(0, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).ExitCode);
        var removed = await monitor.WaitForAsync(l => MonitorProcess.Event(l) == "action" && l.GetProperty("action").GetString() == "remove");
        Assert.Equal("done", removed.GetProperty("outcome").GetString());
        var ran = await monitor.WaitForAsync(l => MonitorProcess.Event(l) == "action" && l.GetProperty("action").GetString() == "virus-event");
        Assert.Equal("done", ran.GetProperty("outcome").GetString());
        Assert.False(File.Exists(eicar));
        Assert.True(File.Exists(tree.Combine("ran-Eicar-Test-Signature")));
        Assert.False(File.Exists(tree.Combine("canary")));
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    [Theory]
    [InlineData("--move and --remove cannot be combined", "--move", "/tmp/q", "--remove")]
    [InlineData("--move and --copy cannot be combined", "--move", "/tmp/q", "--copy", "/tmp/q")]
    public async Task Actions_that_contradict_each_other_are_refused(string message, params string[] args)
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var result = await MonitorProcess.RunAsync(["--include", tree.Path, .. args]);
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith(message, result.StdErr, StringComparison.Ordinal);
    }

    /// <summary>A quarantine directory someone else could read or write is refused before anything starts.</summary>
    [Fact]
    public async Task A_quarantine_others_can_enter_is_refused()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var open = tree.Combine("open");
        Directory.CreateDirectory(open);
        File.SetUnixFileMode(open, (UnixFileMode)0b111_111_111);
        Directory.CreateDirectory(tree.Combine("data"));
        var result = await MonitorProcess.RunAsync("--include", tree.Combine("data"), "--move", open);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("must be a directory of this user's that no one else can enter (0700)", result.StdErr, StringComparison.Ordinal);
        var list = await MonitorProcess.RunAsync("quarantine", "list", "--store", open);
        Assert.Equal(2, list.ExitCode);
    }
}
