using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>The exit codes of docs/consolemonitor.md (0 stopped by a signal, 2 bad arguments or a failed start) and --help.</summary>
[Collection(nameof(MonitorCollection))]
public sealed class ExitCodeTests
{
    /// <summary>--help documents every flag, the directive it sets, the exit codes and the signals.</summary>
    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public async Task Help_documents_every_flag_and_exits_0(string flag)
    {
        var result = await MonitorProcess.RunAsync(flag);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("Usage:", result.StdOut, StringComparison.Ordinal);
        string[] flags = ["--config", "--include", "--exclude", "--mount", "--prevention", "--extra-scanning", "--disable-ddd", "--exclude-uid", "--max-file-size", "--scanner", "--clamd", "--wait", "--signatures", "--json", "--no-cache", "--quiet", "--log", "--status-interval", "--move", "--copy", "--remove", "--version", "check-config", "quarantine"];
        Assert.All(flags, f => Assert.Contains("  " + f + " ", result.StdOut, StringComparison.Ordinal));
        string[] directives = ["OnAccessIncludePath", "OnAccessExcludePath", "OnAccessMountPath", "OnAccessPrevention", "OnAccessExtraScanning", "OnAccessDisableDDD", "OnAccessExcludeUID", "OnAccessMaxFileSize"];
        Assert.All(directives, d => Assert.Contains(d, result.StdOut, StringComparison.Ordinal));
        Assert.Contains("Exit codes: 0", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("SIGHUP", result.StdOut, StringComparison.Ordinal);
        Assert.Equal(string.Empty, result.StdErr);
    }

    [Theory]
    [InlineData("Unrecognized command or argument '--bogus'.", "--bogus")]
    [InlineData("Required argument missing for option: '--include'.", "--include")]
    [InlineData("Required argument missing for option: '--include'.", "--prevention", "--include")]
    [InlineData("--scanner 'magic' is not one of builtin, clamd, allow-all.", "--scanner", "magic")]
    [InlineData("--exclude-uid '-5' is not a UID (decimal digits).", "--exclude-uid", "-5")]
    [InlineData("--max-file-size: ", "--max-file-size", "5X")]
    [InlineData("--wait '3601' is not a number of seconds from 0 to 3600.", "--wait", "3601")]
    [InlineData("--status-interval '0' is not a number of seconds from 1 to 86400.", "--status-interval", "0")]
    [InlineData("Required argument missing for command: 'check-config'.", "check-config")]
    [InlineData("Unrecognized command or argument '--prevention'.", "check-config", "/etc/hostname", "--prevention")] // a monitor flag check-config would ignore
    [InlineData("Unrecognized command or argument '@args'.", "@args")] // no response files: an argument is what it says
    public async Task Bad_arguments_exit_2_naming_the_argument_before_anything_starts(string message, params string[] args)
    {
        var result = await MonitorProcess.RunAsync(args);
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith(message, result.StdErr, StringComparison.Ordinal);
        Assert.Contains("--help explains every flag", result.StdErr, StringComparison.Ordinal);
        Assert.Equal(string.Empty, result.StdOut); // no ready line: nothing was started
    }

    [Fact]
    public async Task SIGINT_stops_the_monitor_with_its_stopped_line_and_exit_code_0()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", MonitorProcess.Eicar);
        await using var monitor = MonitorProcess.Start("--include", tree.Combine("data"), "--prevention");
        await monitor.ReadyAsync();
        Assert.Contains("Operation not permitted", (await KernelTestSupport.RunAsync("/bin/cat", eicar)).StdErr, StringComparison.Ordinal);

        var (stopped, exit) = await monitor.StopAsync("INT");
        Assert.Equal(0, exit);
        Assert.Equal(1, stopped.GetProperty("denied").GetInt64());
    }

    [Fact]
    public async Task Without_root_start_up_exits_2_and_names_CAP_SYS_ADMIN()
    {
        KernelTestSupport.RequireRoot(); // to become nobody
        using var tree = KernelTestSupport.CreateTempTree();
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101); // the include path is valid for nobody too
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        var home = tree.Combine("home");
        Directory.CreateDirectory(home);
        File.SetUnixFileMode(home, (UnixFileMode)0b111_111_111);

        var result = await MonitorProcess.RunAsAsync("nobody", "nogroup", home, "--include", data, "--prevention");
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("ConsoleMonitor could not start: ", result.StdErr, StringComparison.Ordinal);
        Assert.Contains("CAP_SYS_ADMIN", result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("OA10", result.StdErr, StringComparison.Ordinal); // the plan was fine: only the privilege failed
        Assert.DoesNotContain("   at ", result.StdErr, StringComparison.Ordinal);
        Assert.Equal(string.Empty, result.StdOut);
    }
}
