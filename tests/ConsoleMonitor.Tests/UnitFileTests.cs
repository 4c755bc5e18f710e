using OnAccess.ClamAV.Tests;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>
/// deploy/onaccess.service (issue 16, item 3): systemd accepts it; it keeps out every directive that would give the
/// service a mount namespace of its own (and so hide the protected paths from its mount marks); and the capabilities
/// it grants are enough: with only those, other users' private directories are protected and clean verdicts cached.
/// </summary>
[Collection(nameof(MonitorCollection))]
public sealed class UnitFileTests
{
    /// <summary>deploy/onaccess.service, from samples/ConsoleMonitor/bin/CONFIGURATION/net10.0/ConsoleMonitor.dll.</summary>
    private static readonly string Unit = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(MonitorProcess.Dll)!, "../../../../../deploy/onaccess.service"));

    [Fact]
    public async Task Systemd_accepts_the_unit_and_it_asks_for_notify_a_watchdog_and_no_mount_namespace()
    {
        var verify = await KernelTestSupport.RunAsync("/usr/bin/systemd-analyze", "verify", Unit);
        Assert.Equal(0, verify.ExitCode);
        Assert.Equal(string.Empty, verify.StdErr); // unknown keys and bad values are only warnings there
        var settings = Settings();
        Assert.Equal("notify", settings["Type"]);
        Assert.Equal("30s", settings["WatchdogSec"]);
        Assert.Equal("/bin/kill -HUP $MAINPID", settings["ExecReload"]);
        Assert.Equal("yes", settings["NoNewPrivileges"]);
        string[] namespacing = ["ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc", "ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths", "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths", "RootDirectory", "RootImage", "MountFlags", "MemoryDenyWriteExecute"];
        Assert.DoesNotContain(namespacing, settings.ContainsKey);
    }

    [Fact]
    public async Task With_only_the_unit_s_capabilities_other_users_private_directories_are_protected_and_verdicts_cached()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
        var data = tree.Combine("data");
        var eicar = tree.File("data/private/eicar.com", MonitorProcess.Eicar);
        var clean = tree.File("data/private/clean.txt", "clean");
        Private(Path.Combine(data, "private"), eicar, clean);
        var bounding = string.Join(',', ["-all", .. Settings()["CapabilityBoundingSet"].Split(' ').Select(c => "+" + c["CAP_".Length..].ToLowerInvariant())]);
        await using var monitor = MonitorProcess.StartUnder(["/usr/bin/setpriv", "--bounding-set", bounding, "--inh-caps", "-all", "--no-new-privs"], "--include", data, "--prevention");
        await monitor.ReadyAsync();

        Assert.Contains("Operation not permitted", (await AsNobodyAsync("/bin/cat", eicar)).StdErr, StringComparison.Ordinal);
        Assert.Equal("clean", (await AsNobodyAsync("/bin/cat", clean)).StdOut);
        await monitor.DecisionForAsync(clean); // reported once the caches are filled (they come after the answer)
        Assert.Equal("clean", (await AsNobodyAsync("/bin/cat", clean)).StdOut); // answered by the kernel: no event at all

        // A private directory made afterwards is walked and marked too.
        var later = Path.Combine(data, "private", "later");
        Directory.CreateDirectory(later);
        var laterEicar = Path.Combine(later, "eicar.com");
        File.WriteAllText(laterEicar, MonitorProcess.Eicar);
        Private(later, laterEicar);
        await Poll.UntilAsync(async () => (await AsNobodyAsync("/bin/cat", laterEicar)).StdErr.Contains("Operation not permitted", StringComparison.Ordinal), "the later private directory protected");

        var (stopped, exit) = await monitor.StopAsync();
        Assert.Equal(0, exit);
        Assert.Single(monitor.Decisions, d => MonitorProcess.PathOf(d) == clean); // the second open never reached us
        Assert.Equal(0, stopped.GetProperty("errors").GetInt64());
    }

    private static Dictionary<string, string> Settings() =>
        File.ReadAllLines(Unit)
            .Where(l => l.Length > 0 && !l.StartsWith('#') && !l.StartsWith('[') && l.Contains('=', StringComparison.Ordinal))
            .Select(l => l.Split('=', 2))
            .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);

    /// <summary>Owned by nobody, 0700 (files 0600): root without CAP_DAC_OVERRIDE cannot read it.</summary>
    private static void Private(string directory, params string[] files)
    {
        foreach (var path in files.Append(directory))
        {
            Assert.Equal(0, KernelTestSupport.RunAsync("/bin/chown", "nobody:nogroup", path).GetAwaiter().GetResult().ExitCode);
        }

        foreach (var file in files)
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private static Task<KernelTestSupport.ChildResult> AsNobodyAsync(params string[] command) =>
        KernelTestSupport.RunAsync("/usr/bin/setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", .. command]);
}
