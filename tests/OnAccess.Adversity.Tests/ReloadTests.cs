using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Hosting;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Reload without a gap (issue 16, item 2): while another process opens infected files over and over, include paths,
/// exclusions and prevention change; no open of a file both configurations protect is ever allowed, and each file
/// is protected as the new configuration says once the reload returns. An invalid configuration changes nothing.
/// </summary>
public sealed class ReloadTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Include_paths_added_and_removed_while_opens_stream_leave_no_gap()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs");
        var (a, b, c) = (Path.Combine(fs, "a"), Path.Combine(fs, "b"), Path.Combine(fs, "c"));
        var inA = Eicar(a, "deep/er/eicar.com");
        var inB = Eicar(b, "eicar.com");
        var inC = Eicar(c, "sub/eicar.com");
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [a, b], Prevention = true }, new EicarScanner());
        using var hammer = Hammer.Start(inA);
        IReadOnlyList<OnAccessPlanChange> changes = [];
        for (var i = 0; i < 10; i++)
        {
            changes = await h.Monitor.ReloadAsync(new OnAccessOptions { IncludePaths = i % 2 == 0 ? [a, c] : [a, b], Prevention = true }, cancellationToken: Cancel);
            Assert.Equal(2, changes.Count);
            var (added, removed) = i % 2 == 0 ? (inC, inB) : (inB, inC);
            Assert.True((await Attacker.OpenAsync(added)).Denied, $"reload {i}: {added} not protected when the reload returned");
            Assert.True((await Attacker.OpenAsync(removed)).Opened, $"reload {i}: {removed} still held");
        }

        var (opens, denied, readEicar) = await hammer.StopAsync();
        Assert.Empty(readEicar);
        Assert.Equal(opens, denied);
        Assert.True(opens > 100, $"only {opens} opens during ten reloads");
        Assert.Contains(new OnAccessPlanChange("OnAccessIncludePath", null, b), changes);
        Assert.Contains(new OnAccessPlanChange("OnAccessIncludePath", c, null), changes);
        Assert.Equal([a, b], h.Monitor.Plan!.Roots.Select(r => r.Path));
        Assert.Equal(0, h.Monitor.GetStatistics().Errors);
    }

    [Fact]
    public async Task An_exclusion_added_and_removed_while_opens_stream_leaves_the_rest_protected()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs");
        var root = Path.Combine(fs, "root");
        var kept = Eicar(root, "kept/eicar.com");
        var excluded = Eicar(root, "skip/inner/eicar.com");
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());
        using var hammer = Hammer.Start(kept);
        for (var i = 0; i < 6; i++)
        {
            var exclude = i % 2 == 0;
            var changes = await h.Monitor.ReloadAsync(new OnAccessOptions { IncludePaths = [root], ExcludePaths = exclude ? [Path.Combine(root, "skip")] : [], Prevention = true }, cancellationToken: Cancel);
            Assert.Equal([new OnAccessPlanChange("OnAccessExcludePath", exclude ? null : Path.Combine(root, "skip"), exclude ? Path.Combine(root, "skip") : null)], changes);
            Assert.Equal(exclude, (await Attacker.OpenAsync(excluded)).Opened);
        }

        var (opens, denied, readEicar) = await hammer.StopAsync();
        Assert.Empty(readEicar);
        Assert.Equal(opens, denied);
    }

    /// <summary>
    /// Prevention off, then on: from the moment the reload returns, the file is reported and not held, then held again.
    /// A file under another include path with prevention on in both configurations is never read meanwhile.
    /// </summary>
    [Fact]
    public async Task Prevention_turned_off_and_on_applies_when_the_reload_returns()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs");
        var root = Path.Combine(fs, "root");
        var file = Eicar(root, "eicar.com");
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());
        for (var i = 0; i < 4; i++)
        {
            var prevention = i % 2 == 1;
            var changes = await h.Monitor.ReloadAsync(new OnAccessOptions { IncludePaths = [root], Prevention = prevention }, cancellationToken: Cancel);
            Assert.Equal([new OnAccessPlanChange("OnAccessPrevention", prevention ? "no" : "yes", prevention ? "yes" : "no")], changes);
            var outcome = await Attacker.OpenAsync(file);
            Assert.Equal(prevention, outcome.Denied);
            var seen = await h.WaitForAsync(e => e.Path == file && e.Decision == (prevention ? AccessDecision.Deny : AccessDecision.None));
            Assert.Equal(ScanVerdict.Infected, seen.Verdict);
        }
    }

    [Fact]
    public async Task An_invalid_configuration_is_refused_with_its_diagnostics_and_the_running_one_stays()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var root = tree.Combine("root");
        var file = Eicar(root, "eicar.com");
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());
        var plan = h.Monitor.Plan;
        var refused = await Assert.ThrowsAsync<OnAccessPlanException>(() => h.Monitor.ReloadAsync(new OnAccessOptions { IncludePaths = [root], MaxThreads = 0 }, cancellationToken: Cancel));
        Assert.Contains("OnAccessMaxThreads is 0", refused.Message, StringComparison.Ordinal);
        Assert.Same(plan, h.Monitor.Plan);
        Assert.True((await Attacker.OpenAsync(file)).Denied);

        var missing = tree.Combine("missing");
        await Assert.ThrowsAnyAsync<Exception>(() => h.Monitor.ReloadAsync(new OnAccessOptions { MountPaths = [missing] }, cancellationToken: Cancel));
        Assert.Same(plan, h.Monitor.Plan);
        Assert.True((await Attacker.OpenAsync(file)).Denied);
        Assert.Empty(await h.Monitor.ReloadAsync(new OnAccessOptions { IncludePaths = [root], Prevention = true }, cancellationToken: Cancel)); // nothing changed: nothing done
    }

    /// <summary>
    /// During a reload both engines hold watches: at the watch limit the new one cannot watch every directory, so the
    /// reload is refused (and said), the new engine's watches and marks are gone again, and the running one protects on.
    /// </summary>
    [Fact]
    public async Task A_reload_that_cannot_watch_every_directory_is_refused_and_leaves_nothing_behind()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var root = tree.Combine("root");
        var file = Eicar(root, "eicar.com");
        var more = tree.Combine("more");
        for (var i = 0; i < 200; i++)
        {
            Directory.CreateDirectory(Path.Combine(more, $"d{i}"));
        }

        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());
        var plan = h.Monitor.Plan;
        var watches = KernelTestSupport.RootInotifyWatches();
        using (KernelTestSupport.SetSysctl("/proc/sys/fs/inotify/max_user_watches", (watches + 50).ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            var refused = await Assert.ThrowsAnyAsync<IOException>(() => h.Monitor.ReloadAsync(new OnAccessOptions { IncludePaths = [root, more], Prevention = true }, cancellationToken: Cancel));
            Assert.Contains("fs.inotify.max_user_watches", refused.Message, StringComparison.Ordinal);
        }

        Assert.Same(plan, h.Monitor.Plan);
        Assert.Equal(watches, KernelTestSupport.RootInotifyWatches());
        Assert.True((await Attacker.OpenAsync(file)).Denied);
        Assert.True((await Attacker.OpenAsync(Eicar(more, "d1/eicar.com"))).Opened);
    }

    /// <summary>
    /// A host bound to configuration that reloads: a change seen through the options (prevention off) is applied; an
    /// invalid one is logged as refused (event 35) and the running configuration stays.
    /// </summary>
    [Fact]
    public async Task A_host_applies_a_configuration_change_and_refuses_an_invalid_one()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var root = tree.Combine("root");
        var file = Eicar(root, "eicar.com");
        var settings = new Dictionary<string, string?> { ["OnAccess:IncludePaths:0"] = root, ["OnAccess:Prevention"] = "true" };
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        var logs = new LogCollector();
        builder.Logging.AddProvider(logs);
        builder.Services.AddOnAccessScanning(builder.Configuration.GetSection("OnAccess")).AddScanner<EicarScanner>();
        using var host = builder.Build();
        await host.StartAsync(Cancel);
        var monitor = host.Services.GetRequiredService<OnAccessMonitor>();
        var service = host.Services.GetServices<IHostedService>().OfType<OnAccessHostedService>().Single();
        Assert.True((await Attacker.OpenAsync(file)).Denied);

        var configuration = (IConfigurationRoot)builder.Configuration;
        configuration["OnAccess:Prevention"] = "false";
        configuration.Reload();
        await service.LastReload.WaitAsync(KernelTestSupport.Timeout, Cancel);
        Assert.False(monitor.Plan!.Prevention);
        Assert.True((await Attacker.OpenAsync(file)).Opened);
        Assert.Contains(logs.Lines, l => l.StartsWith("34 ", StringComparison.Ordinal) && l.Contains("OnAccessPrevention was yes, is no", StringComparison.Ordinal));

        configuration["OnAccess:Prevention"] = "true";
        configuration["OnAccess:MaxThreads"] = "0";
        configuration.Reload();
        await service.LastReload.WaitAsync(KernelTestSupport.Timeout, Cancel);
        Assert.False(monitor.Plan!.Prevention); // refused whole: not even the valid part applies
        Assert.Contains(logs.Lines, l => l.StartsWith("35 ", StringComparison.Ordinal) && l.Contains("OnAccessMaxThreads is 0", StringComparison.Ordinal));
        await host.StopAsync(Cancel);
    }

    private static string Eicar(string root, string relative)
    {
        var path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, Samples.Eicar);
        return path;
    }

    private sealed class LogCollector : ILoggerProvider, ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

        public IReadOnlyList<string> Lines => [.. _lines];

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue($"{eventId.Id} {formatter(state, exception)}");

        public void Dispose()
        {
        }
    }
}
