using OnAccess.ClamAV.Tests;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>
/// What a service manager and an operator use (issue 16, items 4 and 5): the status line and the health in the stopped
/// line, --log and its reopening on SIGHUP (logrotate), --version with clamd's.
/// </summary>
[Collection(nameof(MonitorCollection))]
public sealed class ServiceTests
{
    [Fact]
    public async Task Status_interval_writes_the_health_and_the_counters_and_the_stopped_line_has_the_health_too()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        Directory.CreateDirectory(tree.Combine("data/sub"));
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--status-interval", "1");
        await monitor.ReadyAsync();
        var status = await monitor.WaitForAsync(l => MonitorProcess.Event(l) == "status");
        Assert.Equal("healthy", status.GetProperty("health").GetString());
        Assert.Equal("protecting 2 directories", status.GetProperty("healthDescription").GetString());
        Assert.Equal(2, status.GetProperty("markedDirectories").GetInt64());
        Assert.True(status.TryGetProperty("denied", out _));

        var (stopped, exit) = await monitor.StopAsync();
        Assert.Equal(0, exit);
        Assert.Equal("healthy", stopped.GetProperty("health").GetString()); // as it was just before it stopped
    }

    [Fact]
    public async Task Status_lines_in_text_name_the_health()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        Directory.CreateDirectory(tree.Combine("data"));
        await using var monitor = MonitorProcess.StartText("--include", tree.Combine("data"), "--status-interval", "1");
        await monitor.WaitForLineAsync(l => l.StartsWith("ready: ", StringComparison.Ordinal));
        var status = await monitor.WaitForLineAsync(l => l.StartsWith("status: ", StringComparison.Ordinal));
        Assert.StartsWith("status: healthy (protecting 1 directory); ", status, StringComparison.Ordinal);
        var (stopped, exit) = await monitor.StopTextAsync();
        Assert.Equal(0, exit);
        Assert.StartsWith("stopped: healthy (protecting 1 directory); ", stopped, StringComparison.Ordinal);
    }

    /// <summary>
    /// Logs go to the --log file, not stderr; logrotate moves it away and sends SIGHUP: the next line goes to a new file
    /// at the path, and the process lives on.
    /// </summary>
    [Fact]
    public async Task Log_writes_to_the_file_and_SIGHUP_reopens_it_for_logrotate()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", MonitorProcess.Eicar);
        var log = tree.Combine("monitor.log");
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--log", log);
        await monitor.ReadyAsync();
        Assert.NotEqual(0, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).ExitCode);
        await Poll.UntilAsync(() => File.Exists(log) && File.ReadAllText(log).Contains("Eicar-Test-Signature", StringComparison.Ordinal), "the detection in the log file");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(log));

        File.Move(log, log + ".1"); // logrotate's rename
        await monitor.SignalAsync("HUP");
        await Poll.UntilAsync(() => File.Exists(log), "the log reopened at its path"); // reopened at once: the path names a new, empty file
        Assert.NotEqual(0, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).ExitCode);
        await Poll.UntilAsync(() => File.ReadAllText(log).Contains("Eicar-Test-Signature", StringComparison.Ordinal), "the second detection in the new log file");
        Assert.Single(File.ReadAllLines(log + ".1"), l => l.Contains("Eicar-Test-Signature", StringComparison.Ordinal));

        var (_, exit) = await monitor.StopAsync();
        Assert.Equal(0, exit);
        Assert.Equal(string.Empty, await monitor.StdErrAsync());
    }

    /// <summary>A link planted where the log is to go would have root append to a file of the planter's choosing.</summary>
    [Fact]
    public async Task Log_refuses_a_symbolic_link_and_exits_2()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var target = tree.File("victim", "untouched\n");
        var link = tree.Combine("monitor.log");
        File.CreateSymbolicLink(link, target);
        var result = await MonitorProcess.RunAsync("--include", tree.Path, "--log", link);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"--log {link}: cannot open it for appending: it is a symbolic link.", result.StdErr, StringComparison.Ordinal);
        Assert.Equal("untouched\n", File.ReadAllText(target));
    }

    /// <summary>
    /// A file someone else made (or a second name of one) where the log is to go would let them read every line root
    /// writes: refused. A file of ours is made 0640 whatever the umask.
    /// </summary>
    [Fact]
    public async Task Log_refuses_a_file_of_another_user_or_with_another_name_and_makes_its_own_0640()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var theirs = tree.File("theirs.log", string.Empty);
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/chown", "nobody", theirs)).ExitCode);
        var result = await MonitorProcess.RunAsync("--include", tree.Path, "--log", theirs);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("belongs to user 65534", result.StdErr, StringComparison.Ordinal);

        var linked = tree.File("linked.log", string.Empty);
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/ln", linked, tree.Combine("elsewhere.log"))).ExitCode);
        result = await MonitorProcess.RunAsync("--include", tree.Path, "--log", linked);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("it has 2 names", result.StdErr, StringComparison.Ordinal);

        var ours = tree.File("ours.log", string.Empty);
        File.SetUnixFileMode(ours, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
        Directory.CreateDirectory(tree.Combine("data"));
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--log", ours);
        await monitor.ReadyAsync();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(ours));
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    /// <summary>A link put where the log was, before logrotate's SIGHUP: the monitor lives on, says so, and logs on to the file it had.</summary>
    [Fact]
    public async Task SIGHUP_with_a_link_at_the_log_path_keeps_the_open_log_and_the_monitor_running()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", MonitorProcess.Eicar);
        var log = tree.Combine("monitor.log");
        var victim = tree.File("victim", "untouched\n");
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--log", log);
        await monitor.ReadyAsync();
        File.Move(log, log + ".1");
        File.CreateSymbolicLink(log, victim);
        await monitor.SignalAsync("HUP");
        await monitor.WaitForAsync(l => MonitorProcess.Event(l) == "reloaded"); // the reload went ahead
        Assert.NotEqual(0, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).ExitCode); // still protecting
        await Poll.UntilAsync(() => File.ReadAllText(log + ".1").Contains("Eicar-Test-Signature", StringComparison.Ordinal), "the detection in the file open before");
        Assert.Equal("untouched\n", File.ReadAllText(victim));
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
        Assert.Contains("the log was not reopened", await monitor.StdErrAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version_names_the_program_the_library_and_clamd_s_version()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var plain = await MonitorProcess.RunAsync("--version", "--include", tree.Path);
        Assert.Equal(0, plain.ExitCode);
        Assert.Matches(@"^ConsoleMonitor [0-9.]+ \(OnAccess [0-9.]+[^)]*, \.NET [0-9.]+\)\n$", plain.StdOut);

        await using var clamd = await ClamdProcess.StartAsync(tree, ["44d88612fea8a8f36de82e1278abb02f:68:OnAccess.Test.Version"]);
        var withClamd = await MonitorProcess.RunAsync("--version", "--clamd", clamd.Endpoint);
        Assert.Equal(0, withClamd.ExitCode);
        Assert.Contains($"clamd {clamd.Endpoint}: ClamAV ", withClamd.StdOut, StringComparison.Ordinal);

        var json = await MonitorProcess.RunAsync("--version", "--clamd", clamd.Endpoint, "--json");
        using var document = System.Text.Json.JsonDocument.Parse(json.StdOut);
        Assert.Equal("version", document.RootElement.GetProperty("event").GetString());
        Assert.StartsWith("ClamAV ", document.RootElement.GetProperty("clamd")[0].GetProperty("version").GetString(), StringComparison.Ordinal);

        var unreadable = tree.File("bad.conf", "OnAccessIncludePath\n");
        var withBadConfig = await MonitorProcess.RunAsync("--version", "--config", unreadable);
        Assert.Equal(0, withBadConfig.ExitCode); // the version is still told
        Assert.Contains("the configuration cannot be read", withBadConfig.StdOut, StringComparison.Ordinal);
    }
}
