using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>
/// Which scanner runs, and that a clamd it cannot reach stops start-up (issue 16, item 1). Before: a clamd.conf naming
/// LocalSocket without --scanner clamd ran the built-in EICAR-only scanner, and an unreachable clamd printed "ready"
/// and allowed every open as a scan error.
/// </summary>
[Collection(nameof(MonitorCollection))]
public sealed class ScannerChoiceTests
{
    private const string Denied = "Operation not permitted";

    [Fact]
    public async Task A_clamd_conf_naming_LocalSocket_scans_with_that_clamd_without_a_scanner_flag()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var sample = tree.File("data/sample.bin", "a file only clamd's database names " + Guid.NewGuid());
        await using var clamd = await ClamdProcess.StartAsync(tree, [FlagTests.HdbLine(sample, "OnAccess.Test.Choice")]);
        var conf = tree.File("onaccess.conf", $"LocalSocket {clamd.Endpoint["unix:".Length..]}\nOnAccessIncludePath {tree.Combine("data")}\nOnAccessPrevention yes\n");
        await using var monitor = MonitorProcess.Start("--config", conf);
        var ready = await monitor.ReadyAsync();
        Assert.Equal("clamd", ready.GetProperty("scanner").GetString());
        Assert.Contains(clamd.Endpoint, ready.GetProperty("scannerDetail").GetString(), StringComparison.Ordinal);

        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", sample)).StdErr, StringComparison.Ordinal);
        Assert.StartsWith("OnAccess.Test.Choice", (await monitor.DecisionForAsync(sample)).GetProperty("threat").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    [Fact]
    public async Task A_clamd_that_does_not_answer_stops_start_up_with_exit_2_naming_the_endpoint_and_why()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", MonitorProcess.Eicar);
        var missing = tree.Combine("run", "clamd.ctl");

        var flagged = await MonitorProcess.RunAsync("--include", tree.Combine("data"), "--prevention", "--clamd", "unix:" + missing);
        Assert.Equal(2, flagged.ExitCode);
        Assert.Contains($"unix:{missing}: no such socket: {missing} does not exist", flagged.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("\"ready\"", flagged.StdOut, StringComparison.Ordinal);

        var notASocket = tree.File("run/file.ctl", "a regular file");
        var file = await MonitorProcess.RunAsync("--include", tree.Combine("data"), "--prevention", "--clamd", "unix:" + notASocket);
        Assert.Equal(2, file.ExitCode);
        Assert.Contains($"unix:{notASocket}: {notASocket} is not a socket", file.StdErr, StringComparison.Ordinal);
        var refused = await MonitorProcess.RunAsync("--include", tree.Combine("data"), "--prevention", "--clamd", "tcp://127.0.0.1:1");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("tcp://127.0.0.1:1: connection refused: nothing listens on 127.0.0.1:1", refused.StdErr, StringComparison.Ordinal);

        // --clamd repeated is a farm: every endpoint is tried, and each one's reason named.
        var farm = await MonitorProcess.RunAsync("--include", tree.Combine("data"), "--prevention", "--clamd", "unix:" + missing, "--clamd", "tcp://127.0.0.1:1");
        Assert.Equal(2, farm.ExitCode);
        Assert.Contains($"unix:{missing}: no such socket", farm.StdErr, StringComparison.Ordinal);
        Assert.Contains("tcp://127.0.0.1:1: connection refused", farm.StdErr, StringComparison.Ordinal);

        // The same from a clamd.conf alone: clamd is chosen (never the built-in scanner instead), and it must answer.
        var conf = tree.File("onaccess.conf", $"LocalSocket {missing}\nOnAccessIncludePath {tree.Combine("data")}\nOnAccessPrevention yes\n");
        var configured = await MonitorProcess.RunAsync("--config", conf);
        Assert.Equal(2, configured.ExitCode);
        Assert.Contains("no such socket", configured.StdErr, StringComparison.Ordinal);
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).ExitCode); // nothing is left marked
    }

    [Fact]
    public async Task Wait_lets_start_up_wait_for_a_clamd_that_comes_up_later()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var sample = tree.File("data/sample.bin", "a file only clamd's database names " + Guid.NewGuid());
        var socket = tree.Combine("clamd", "clamd.sock"); // where ClamdProcess will listen
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention", "--clamd", "unix:" + socket, "--wait", "120");
        await using var clamd = await ClamdProcess.StartAsync(tree, [FlagTests.HdbLine(sample, "OnAccess.Test.Wait")]);
        Assert.Equal("clamd", (await monitor.ReadyAsync()).GetProperty("scanner").GetString());
        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", sample)).StdErr, StringComparison.Ordinal);
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    /// <summary>
    /// Given neither --config nor a path to watch, /etc/clamav/clamd.conf is read, as clamonacc does. The test replaces
    /// that file for the monitor alone (a bind mount in a private mount namespace), never for the machine.
    /// </summary>
    [Fact]
    public async Task Without_config_or_paths_the_system_clamd_conf_is_read_as_clamonacc_does()
    {
        KernelTestSupport.RequireRoot();
        Assert.True(File.Exists("/etc/clamav/clamd.conf"), "Debian's clamav-daemon is missing (scripts/test.sh installs it)");
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", MonitorProcess.Eicar);
        var conf = tree.File("system.conf", $"OnAccessIncludePath {tree.Combine("data")}\nOnAccessPrevention yes\n");
        await using var monitor = MonitorProcess.StartWithFileOver(conf, "/etc/clamav/clamd.conf");
        var ready = await monitor.ReadyAsync();
        Assert.Equal("/etc/clamav/clamd.conf", ready.GetProperty("config").GetString());
        Assert.Equal("builtin", ready.GetProperty("scanner").GetString());
        Assert.Contains(Denied, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).StdErr, StringComparison.Ordinal);
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
        Assert.DoesNotContain("OnAccessIncludePath", File.ReadAllText("/etc/clamav/clamd.conf"), StringComparison.Ordinal); // the machine's is untouched
    }

    [Theory]
    [InlineData("--scanner builtin --clamd unix:/run/clamav/clamd.ctl", "--clamd applies to the clamd scanner")]
    [InlineData("--scanner clamd --signatures /tmp/x.hdb", "--signatures applies to the built-in scanner")]
    [InlineData("--wait 5", "--wait applies to the clamd scanner")]
    [InlineData("--clamd unix:/x --wait forever", "--wait 'forever' is not a number of seconds")]
    public async Task Flags_that_do_not_apply_to_the_scanner_are_refused(string arguments, string message)
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var args = arguments.Split(' ');
        var result = await MonitorProcess.RunAsync(["--include", tree.Path, .. args]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.StdErr, StringComparison.Ordinal);
    }
}
