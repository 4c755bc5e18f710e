using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>The exit codes of docs/consolemonitor.md (0 stopped by a signal, 2 bad arguments or a failed start) and --help.</summary>
[Collection(nameof(MonitorCollection))]
public sealed class ExitCodeTests
{
    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public async Task Help_prints_the_usage_and_exits_0(string flag)
    {
        var result = await MonitorProcess.RunAsync(flag);
        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("Usage:", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("[--exclude-uid N]", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("check-config FILE", result.StdOut, StringComparison.Ordinal);
        Assert.Equal(string.Empty, result.StdErr);
    }

    [Theory]
    [InlineData("Unknown argument '--bogus'.", "--bogus")]
    [InlineData("--include needs a value.", "--include")]
    [InlineData("--include needs a value.", "--prevention", "--include")]
    [InlineData("--scanner 'magic' is not one of builtin, clamd, allow-all.", "--scanner", "magic")]
    [InlineData("--exclude-uid '-5' is not a UID (decimal digits).", "--exclude-uid", "-5")]
    [InlineData("--max-file-size: ", "--max-file-size", "5X")]
    public async Task Bad_arguments_exit_2_naming_the_argument_before_anything_starts(string message, params string[] args)
    {
        var result = await MonitorProcess.RunAsync(args);
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith(message, result.StdErr, StringComparison.Ordinal);
        Assert.Contains("Usage:", result.StdErr, StringComparison.Ordinal);
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
