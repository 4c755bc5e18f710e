using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OnAccess.Config;
using OnAccess.Hosting;
using OnAccess.Tests;

namespace OnAccess.Core.Tests;

[Collection(nameof(KernelCollection))]
public sealed class HostingTests
{
    [Fact]
    public async Task A_generic_host_with_AddOnAccessScanning_starts_protects_and_stops_cleanly()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", EicarScanner.Eicar);
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(o =>
        {
            o.IncludePaths = [tree.Combine("data")];
            o.Prevention = true;
        }).AddScanner<EicarScanner>();
        using var host = builder.Build();
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        var instruments = new ConcurrentDictionary<string, Instrument>();
        long events = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == factory) // this host's meter, not another test's monitor
            {
                instruments[instrument.Name] = instrument;
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (instrument.Name == "onaccess.events")
            {
                Interlocked.Exchange(ref events, value);
            }
        });
        listener.Start();
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        await host.StartAsync(cts.Token);
        var monitor = host.Services.GetRequiredService<IOnAccessMonitor>();
        Assert.True(monitor.Plan!.Prevention);

        // The options were resolved into a plan once, when they were validated on start, and that plan is the monitor's.
        var options = host.Services.GetRequiredService<IOptionsMonitor<OnAccessOptions>>().CurrentValue;
        var plans = host.Services.GetRequiredService<OnAccessPlanSource>();
        Assert.Same(plans.PlanFor(options), monitor.Plan);
        Assert.Equal(1, plans.Resolutions);

        Assert.True(Child.WasDenied(await Child.CatAsync(eicar)));

        // The meter is the host's (from its IMeterFactory), versioned, and its instruments count what happened.
        Assert.True(instruments.TryGetValue("onaccess.events", out var counter), "no onaccess.events instrument from the host's meter factory");
        var meter = counter.Meter;
        Assert.Equal("OnAccess", meter.Name);
        Assert.False(string.IsNullOrEmpty(meter.Version));
        listener.RecordObservableInstruments();
        Assert.True(Interlocked.Read(ref events) >= 1, "onaccess.events counted nothing");
        await host.StopAsync(cts.Token);

        // Stopped: nothing holds the file any more.
        Assert.Equal(0, (await Child.CatAsync(eicar)).ExitCode);
        Assert.Equal(1, monitor.GetStatistics().Denied);
    }

    /// <summary>
    /// Options bound from configuration (keys are the option names), an observer added through the builder (it sees
    /// every decision), and the engine configured through it (no kernel cache: the second open of a clean file is
    /// answered from the user-space cache, which only a working ConfigureEngine makes visible).
    /// </summary>
    /// <summary>One call on the health-checks builder, and the host's health report holds the monitor's state and figures.</summary>
    [Fact]
    public async Task AddOnAccess_puts_the_monitor_s_health_in_the_host_s_health_report()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        Directory.CreateDirectory(tree.Combine("data/sub"));
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(o =>
        {
            o.IncludePaths = [tree.Combine("data")];
            o.Prevention = true;
        }).AddScanner<EicarScanner>();
        builder.Services.AddHealthChecks().AddOnAccess(tags: ["security"]);
        using var host = builder.Build();
        var health = host.Services.GetRequiredService<HealthCheckService>();
        var before = await health.CheckHealthAsync(TestContext.Current.CancellationToken);
        Assert.Equal(HealthStatus.Unhealthy, before.Entries["onaccess"].Status);

        await host.StartAsync(TestContext.Current.CancellationToken);
        var report = await health.CheckHealthAsync(c => c.Tags.Contains("security"), TestContext.Current.CancellationToken);
        var entry = report.Entries["onaccess"];
        Assert.True(entry.Status == HealthStatus.Healthy, entry.Description);
        Assert.Equal(2L, entry.Data["marked_directories"]);
        Assert.Equal("responding", entry.Data["event_loop"]);
        await host.StopAsync(TestContext.Current.CancellationToken);
        Assert.Equal(HealthStatus.Unhealthy, (await health.CheckHealthAsync(TestContext.Current.CancellationToken)).Status);
    }

    [Fact]
    public async Task Configuration_binding_AddObserver_and_ConfigureEngine_take_effect()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", EicarScanner.Eicar);
        var clean = tree.File("data/clean.txt", "clean");
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OnAccess:IncludePaths:0"] = tree.Combine("data"),
            ["OnAccess:Prevention"] = "true",
            ["OnAccess:MaxThreads"] = "3",
        });
        builder.Services.AddOnAccessScanning(builder.Configuration.GetSection("OnAccess"))
            .AddScanner<EicarScanner>()
            .AddObserver<RecordingObserver>()
            .ConfigureEngine(e => e.KernelCache = false);
        using var host = builder.Build();
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        await host.StartAsync(cts.Token);
        try
        {
            var monitor = host.Services.GetRequiredService<IOnAccessMonitor>();
            Assert.Equal((true, 3), (monitor.Plan!.Prevention, monitor.Plan.MaxThreads));
            var observer = Assert.Single(host.Services.GetServices<IOnAccessObserver>().OfType<RecordingObserver>());

            Assert.True(Child.WasDenied(await Child.CatAsync(eicar)));
            // Only a file whose ctime is older than the clock's granularity is remembered (docs/reliability.md).
            while (DateTime.UtcNow - File.GetLastWriteTimeUtc(clean) < TimeSpan.FromMilliseconds(100))
            {
                await Task.Delay(10, cts.Token);
            }

            var first = await Child.CatAsync(clean);
            var second = await Child.CatAsync(clean);
            Assert.Equal(("clean", "clean"), (first.StdOut, second.StdOut));

            Assert.Equal(AccessDecision.Deny, (await observer.WaitForAsync(e => e.Path == eicar, cts.Token)).Decision);
            Assert.Equal(DecisionReason.Scanned, (await observer.WaitForAsync(e => e.ProcessId == first.Pid, cts.Token)).Reason);
            Assert.Equal(DecisionReason.Cached, (await observer.WaitForAsync(e => e.ProcessId == second.Pid, cts.Token)).Reason);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_bad_option_fails_start_and_names_the_directive()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(o =>
        {
            o.IncludePaths = [tree.Path];
            o.MaxThreads = 0;
        }).AddScanner<EicarScanner>();
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("OnAccessMaxThreads", e.Message, StringComparison.Ordinal);
        Assert.Contains("OA1017", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_clamd_conf_with_an_error_fails_start_naming_file_line_and_directive()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var conf = tree.File("clamd.conf", $"OnAccessIncludePath {tree.Path}\nOnAccessPrevention maybe\n");
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(conf).AddScanner<EicarScanner>();
        using var host = builder.Build();
        var e = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains($"{conf}:2: OnAccessPrevention", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_scanner_resolution_says_how_to_add_one()
    {
        var services = new ServiceCollection();
        services.AddOnAccessScanning(o => o.IncludePaths = ["/srv"]);
        using var provider = services.BuildServiceProvider();
        var e = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IOnAccessMonitor>());
        Assert.Contains("AddScanner", e.Message, StringComparison.Ordinal);
    }
}

/// <summary>An observer the container creates: records every decision.</summary>
internal sealed class RecordingObserver : IOnAccessObserver
{
    private readonly ConcurrentQueue<OnAccessEvent> _events = new();

    public void OnEvent(OnAccessEvent accessEvent) => _events.Enqueue(accessEvent);

    public async Task<OnAccessEvent> WaitForAsync(Func<OnAccessEvent, bool> match, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_events.FirstOrDefault(match) is { } found)
            {
                return found;
            }

            await Task.Delay(10, cancellationToken);
        }
    }
}
