using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OnAccess.Tests;

namespace OnAccess.ClamAV.Tests;

/// <summary>
/// A farm of four real clamd: three on loopback TCP ports (127.0.0.1 only), one on a unix socket. Each test leaves them
/// running and answering (a killed one is restarted, a frozen one let go), whatever happened.
/// </summary>
public sealed class FarmFixture : IAsyncLifetime
{
    public FarmClamd A { get; } = new();

    public FarmClamd B { get; } = new();

    public FarmClamd C { get; } = new();

    public FarmClamd D { get; } = new();

    public IReadOnlyList<string> Tcp => [A.TcpEndpoint, B.TcpEndpoint, C.TcpEndpoint];

    public async ValueTask InitializeAsync() => await Task.WhenAll(A.InitializeAsync().AsTask(), B.InitializeAsync().AsTask(), C.InitializeAsync().AsTask(), D.InitializeAsync().AsTask());

    public async ValueTask DisposeAsync()
    {
        await A.DisposeAsync();
        await B.DisposeAsync();
        await C.DisposeAsync();
        await D.DisposeAsync();
    }
}

/// <summary>A farm member: streams up to 64 MiB, so large files are scanned whole over TCP.</summary>
public sealed class FarmClamd : ClamdFixture
{
    public const long Limit = 64L * 1024 * 1024;

    protected override long StreamLimit => Limit;
}

/// <summary>
/// Alone (no other test class runs meanwhile): on two cores, shares between "equal" endpoints are only equal when no
/// other test's clamd competes for the CPU with some of them.
/// </summary>
[CollectionDefinition(nameof(FarmCollection), DisableParallelization = true)]
public sealed class FarmCollection : ICollectionFixture<FarmFixture>;

[Collection(nameof(FarmCollection))]
public sealed class ClamdFarmTests(FarmFixture farm)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Scans_of_large_files_are_shared_within_25_percent_between_three_equal_endpoints()
    {
        using var tree = TestFiles.Tree();
        var files = Enumerable.Range(0, 6).Select(i => RandomFile(tree, $"big{i}", 4 << 20)).ToList();
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [.. farm.Tcp], StreamMaxLength = FarmClamd.Limit });
        Assert.All((await scanner.PingAsync(TestContext.Current.CancellationToken)).Values, Assert.True);
        var results = new ConcurrentBag<ScanResult>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 150), new ParallelOptions { MaxDegreeOfParallelism = 6 }, async (i, ct) => results.Add(await TestFiles.ScanAsync(scanner, files[i % files.Count])));

        Assert.All(results, r => Assert.Equal(ScanVerdict.Clean, r.Verdict));
        var status = scanner.GetEndpointStatus();
        Assert.Equal(150, status.Sum(s => s.Scans));
        Assert.True(status.All(s => s.Scans >= 50 * 0.75 && s.Scans <= 50 * 1.25), $"not within 25 % of 50 each: {string.Join("; ", status)}");
        Assert.All(status, s => Assert.Equal(0, s.ScansInFlight));
    }

    [Fact]
    public async Task Among_equally_loaded_endpoints_the_unix_one_is_chosen()
    {
        using var tree = TestFiles.Tree();
        var eicar = tree.File("eicar.com", HashDatabaseScanner.EicarTestString);
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [farm.A.TcpEndpoint, farm.D.UnixEndpoint] });
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("Test.Eicar.UNOFFICIAL", (await TestFiles.ScanAsync(scanner, eicar)).ThreatName);
        }

        var status = scanner.GetEndpointStatus();
        Assert.Equal(0, status[0].Scans);
        Assert.Equal(20, status[1].Scans);
    }

    [Fact]
    public async Task A_clamd_killed_during_a_stream_of_opens_costs_no_open_an_error_and_is_readmitted_within_two_probe_intervals()
    {
        KernelTestSupport.RequireRoot();
        using var tree = TestFiles.Tree();
        const int PerPhase = 60;
        for (var i = 0; i < 2 * PerPhase; i++)
        {
            tree.File($"protected/f{i}", i % 3 == 0 ? HashDatabaseScanner.EicarTestString : $"clean {i}");
        }

        var probe = TimeSpan.FromSeconds(1);
        var logs = new LogCollector();
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [.. farm.Tcp], ProbeInterval = probe }, logs);
        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("protected")], Prevention = true, ScanTimeout = Deadline };
        var engine = new OnAccessEngineOptions { CacheCapacity = 0, KernelCache = false, CloseScanning = false };
        await using var monitor = new OnAccessMonitor(options, scanner, engine);
        await monitor.StartAsync(TestContext.Current.CancellationToken);

        // Every open from a child shell: phase one, a mark, wait for "go", phase two (after the kill).
        var script = $$"""
            p={{tree.Combine("protected")}}
            for i in $(seq 0 {{PerPhase - 1}}); do if cat $p/f$i >/dev/null 2>&1; then echo "allowed $i"; else echo "denied $i"; fi; done
            touch {{tree.Combine("phase1")}}
            while [ ! -e {{tree.Combine("go")}} ]; do sleep 0.01; done
            for i in $(seq {{PerPhase}} {{(2 * PerPhase) - 1}}); do if cat $p/f$i >/dev/null 2>&1; then echo "allowed $i"; else echo "denied $i"; fi; done
            """;
        var shell = KernelTestSupport.RunAsync("/bin/sh", ["-c", script], TimeSpan.FromSeconds(120));
        var restarted = false;
        try
        {
            await Poll.UntilAsync(() => File.Exists(tree.Combine("phase1")), "the first phase of opens");
            Assert.True(scanner.GetEndpointStatus()[1].Scans > 0, "B scanned before it was killed");
            farm.B.Kill();
            File.WriteAllText(tree.Combine("go"), string.Empty);
            var result = await shell;
            Assert.Equal(0, result.ExitCode);

            var lines = result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2 * PerPhase, lines.Length);
            foreach (var line in lines)
            {
                var i = int.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(i % 3 == 0 ? "denied" : "allowed", line.Split(' ')[0]);
            }

            var stats = monitor.GetStatistics();
            Assert.Equal(0, stats.Errors);
            Assert.Equal(0, stats.Timeouts);
            var b = scanner.GetEndpointStatus()[1];
            Assert.False(b.InBalance, "B is ejected");
            Assert.Equal(1, b.Ejections);
            Assert.Contains(logs.Events, e => e.Id == 403 && e.Message.Contains(farm.B.TcpEndpoint, StringComparison.Ordinal));
            var health = await scanner.CheckHealthAsync(new Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext(), TestContext.Current.CancellationToken);
            Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Degraded, health.Status);
            Assert.Contains("ejected", (string)health.Data["clamd " + farm.B.TcpEndpoint], StringComparison.Ordinal);
            Assert.Contains("in the balance", (string)health.Data["clamd " + farm.A.TcpEndpoint], StringComparison.Ordinal);

            await farm.B.StartAsync();
            restarted = true;
            var answering = Stopwatch.StartNew();
            await Poll.UntilAsync(() => scanner.GetEndpointStatus()[1].InBalance, "B to be readmitted");
            Assert.True(answering.Elapsed <= 2 * probe, $"readmitted {answering.ElapsedMilliseconds} ms after it answered again (probe interval {probe.TotalMilliseconds} ms)");
            await Poll.UntilAsync(() => logs.Events.Any(e => e.Id == 404 && e.Message.Contains(farm.B.TcpEndpoint, StringComparison.Ordinal)), "the readmission to be logged");
        }
        finally
        {
            if (!restarted)
            {
                await farm.B.StartAsync();
            }
        }

        // Back in the balance, it scans again.
        using var more = TestFiles.Tree();
        var sample = more.File("clean", "clean again");
        var before = scanner.GetEndpointStatus()[1].Scans;
        await Parallel.ForEachAsync(Enumerable.Range(0, 30), new ParallelOptions { MaxDegreeOfParallelism = 6 }, async (_, _) => Assert.Equal(ScanVerdict.Clean, (await TestFiles.ScanAsync(scanner, sample)).Verdict));
        Assert.True(scanner.GetEndpointStatus()[1].Scans > before, "B scans again");
    }

    [Fact]
    public async Task Scans_move_away_from_a_frozen_clamd_within_the_deadline()
    {
        using var tree = TestFiles.Tree();
        var eicar = tree.File("eicar.com", HashDatabaseScanner.EicarTestString);
        var big = RandomFile(tree, "big", 2 << 20);
        var reply = TimeSpan.FromMilliseconds(300);
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [.. farm.Tcp], StreamMaxLength = FarmClamd.Limit, ReplyTimeout = reply, ProbeInterval = TimeSpan.FromMilliseconds(500) });
        Assert.Equal(ScanVerdict.Clean, (await TestFiles.ScanAsync(scanner, big)).Verdict);

        await farm.C.SignalAsync("STOP");
        var took = new ConcurrentBag<(bool Eicar, ScanResult Result, TimeSpan Took)>();
        try
        {
            // Scans from three workers until the frozen one is out of the balance (three failed attempts), and 30 more.
            var after = -1;
            var started = 0;
            await Parallel.ForEachAsync(Enumerable.Range(0, 3), async (_, _) =>
            {
                while (true)
                {
                    var i = Interlocked.Increment(ref started);
                    if (i > 300 || (Volatile.Read(ref after) is > 0 and var limit && i > limit))
                    {
                        return;
                    }

                    var path = i % 2 == 0 ? eicar : big;
                    using var handle = File.OpenHandle(path);
                    using var deadline = new CancellationTokenSource(Deadline);
                    var watch = Stopwatch.StartNew();
                    var result = await scanner.ScanAsync(new ScanRequest(handle, path, RandomAccess.GetLength(handle), 0, null, AccessKind.Open), deadline.Token);
                    took.Add((path == eicar, result, watch.Elapsed));
                    if (!scanner.GetEndpointStatus()[2].InBalance)
                    {
                        Interlocked.CompareExchange(ref after, i + 30, -1);
                    }
                }
            });

            var c = scanner.GetEndpointStatus()[2];
            Assert.False(c.InBalance, "the frozen clamd is ejected");
            Assert.True(c.Failures >= 3, $"{c.Failures} failures"); // two attempts may have been on it at once
            Assert.Contains("no answer to PING", c.LastFailure, StringComparison.Ordinal);
        }
        finally
        {
            await farm.C.SignalAsync("CONT");
        }

        Assert.All(took, t => Assert.Equal(t.Eicar ? ScanVerdict.Infected : ScanVerdict.Clean, t.Result.Verdict));
        // An attempt on the frozen one costs at most two reply timeouts before the scan goes elsewhere.
        Assert.All(took, t => Assert.True(t.Took < (2 * reply) + TimeSpan.FromSeconds(1.5), $"a scan took {t.Took.TotalMilliseconds} ms"));
        await Poll.UntilAsync(() => scanner.GetEndpointStatus()[2].InBalance, "the clamd let go to be readmitted");
    }

    [Fact]
    public async Task A_database_reload_on_one_endpoint_drops_cached_verdicts_and_mixed_versions_are_reported()
    {
        KernelTestSupport.RequireRoot();
        var dbA = farm.A.Tree.Combine("db");
        var dbD = farm.D.Tree.Combine("db");
        var unrelated = TestFiles.HdbLine("unrelated"u8.ToArray(), "Test.Unrelated");
        ClamdDatabase.WriteDaily(dbA, 7, [unrelated]);
        File.Copy(Path.Combine(dbA, "daily.cud"), Path.Combine(dbD, "daily.cud"), overwrite: true); // the same database, to the byte
        Assert.Equal("RELOADING", await ClamdDatabase.CommandAsync(farm.A.Socket, "RELOAD"));
        Assert.Equal("RELOADING", await ClamdDatabase.CommandAsync(farm.D.Socket, "RELOAD"));
        var logs = new LogCollector();
        try
        {
            foreach (var member in new[] { farm.A, farm.D })
            {
                await Poll.UntilAsync(async () => (await ClamdDatabase.CommandAsync(member.Socket, "VERSION")).Contains("/7/", StringComparison.Ordinal), "clamd to load version 7");
            }

            await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [farm.A.TcpEndpoint, farm.D.UnixEndpoint] }, logs) { VersionCheckInterval = TimeSpan.FromMilliseconds(100) };
            await Poll.UntilAsync(() => Versions(scanner).All(v => v?.Contains("/7/", StringComparison.Ordinal) == true), "the scanner to see version 7 on both");
            var before = scanner.Generation;
            Assert.DoesNotContain(logs.Events, e => e.Id == 405);

            // A file found clean and cached (the kernel answers its opens itself)...
            using var tree = TestFiles.Tree();
            var target = tree.File("protected/target", "version 8");
            await using var monitor = new OnAccessMonitor(new Config.OnAccessOptions { IncludePaths = [tree.Combine("protected")], Prevention = true }, scanner);
            await monitor.StartAsync(TestContext.Current.CancellationToken);
            Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/cat", target)).ExitCode);
            await Poll.UntilAsync(() => monitor.GetStatistics().KernelCachedFiles == 1, "the clean verdict to be cached in the kernel");
            Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/cat", target)).ExitCode);
            var scans = monitor.GetStatistics().Scans;

            // ...is scanned again once one endpoint loads signatures that name it, and denied (the unix endpoint, first
            // among equals, scans it).
            ClamdDatabase.WriteDaily(dbD, 8, [unrelated, TestFiles.HdbLine("version 8"u8.ToArray(), "Test.Version8")]);
            Assert.Equal("RELOADING", await ClamdDatabase.CommandAsync(farm.D.Socket, "RELOAD"));
            await Poll.UntilAsync(() => scanner.Generation > before, "the generation to change after one endpoint loaded version 8");
            await Poll.UntilAsync(() => logs.Events.Any(e => e.Id == 405 && e.Message.Contains("/7/", StringComparison.Ordinal) && e.Message.Contains("/8/", StringComparison.Ordinal)), "the mixed versions to be reported");
            await Poll.UntilAsync(() => monitor.GetStatistics().KernelCachedFiles == 0, "the monitor to drop what it cached");
            var denied = await KernelTestSupport.RunAsync("/bin/cat", target);
            Assert.NotEqual(0, denied.ExitCode);
            Assert.True(monitor.GetStatistics().Scans > scans, "scanned again"); // once, or once more by the group being replaced
        }
        finally
        {
            // The farm's other tests expect only the fixture's signatures.
            File.Delete(Path.Combine(dbA, "daily.cud"));
            File.Delete(Path.Combine(dbD, "daily.cud"));
            foreach (var member in new[] { farm.A, farm.D })
            {
                await ClamdDatabase.CommandAsync(member.Socket, "RELOAD");
            }
        }
    }

    /// <summary>
    /// A clamd that fails every scan fast (here its TemporaryDirectory is gone, as with a full disk: it closes each
    /// INSTREAM session) has the fewest scans in flight: it must not draw the scans. Each is tried on the other endpoint,
    /// the failing one is ejected, and no scan ends in an error.
    /// </summary>
    [Fact]
    public async Task A_clamd_failing_every_scan_fast_loses_the_scans_to_one_that_answers()
    {
        using var tree = TestFiles.Tree();
        var eicar = tree.File("eicar.com", HashDatabaseScanner.EicarTestString);
        var clean = tree.File("clean", "clean");
        var temporary = farm.C.Tree.Combine("tmp");
        Directory.Move(temporary, temporary + ".gone");
        try
        {
            await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [farm.A.TcpEndpoint, farm.C.TcpEndpoint] });
            for (var i = 0; i < 12; i++)
            {
                Assert.Equal(i % 2 == 0 ? ScanVerdict.Infected : ScanVerdict.Clean, (await TestFiles.ScanAsync(scanner, i % 2 == 0 ? eicar : clean)).Verdict);
            }

            var c = scanner.GetEndpointStatus()[1];
            Assert.False(c.InBalance, "the failing clamd is ejected");
            Assert.Equal(12, scanner.GetEndpointStatus()[0].Scans);
        }
        finally
        {
            Directory.Move(temporary + ".gone", temporary);
        }
    }

    /// <summary>
    /// An ERROR reply is the clamd's fault only when another endpoint answers the same scan: then it is counted against
    /// it (and it is ejected); when every endpoint answers ERROR, the file is to blame and no endpoint is.
    /// </summary>
    [Fact]
    public async Task An_ERROR_reply_is_blamed_on_the_endpoint_only_when_another_answers()
    {
        using var tree = TestFiles.Tree();
        var eicar = tree.File("eicar.com", HashDatabaseScanner.EicarTestString);
        await using var failing = StubClamd.StartFailing(tree.Combine("failing.sock"));
        await using var alsoFailing = StubClamd.StartFailing(tree.Combine("also-failing.sock"));

        await using (var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [farm.A.TcpEndpoint, "unix:" + failing.SocketPath], Mode = ClamdScanMode.Stream }))
        {
            for (var i = 0; i < 6; i++)
            {
                Assert.Equal("Test.Eicar.UNOFFICIAL", (await TestFiles.ScanAsync(scanner, eicar)).ThreatName);
            }

            var stub = scanner.GetEndpointStatus()[1];
            Assert.False(stub.InBalance, "the endpoint answering ERROR where another answers is ejected");
            Assert.True(stub.LastFailure?.Contains("ERROR", StringComparison.Ordinal) == true, stub.LastFailure);
        }

        await using var both = new ClamdScanner(new ClamdScannerOptions { Endpoints = ["unix:" + failing.SocketPath, "unix:" + alsoFailing.SocketPath], Mode = ClamdScanMode.Stream });
        for (var i = 0; i < 6; i++)
        {
            var result = await TestFiles.ScanAsync(both, eicar);
            Assert.Equal(ScanVerdict.Error, result.Verdict);
            Assert.Contains("Can't create temporary file", result.Reason, StringComparison.Ordinal);
        }

        Assert.All(both.GetEndpointStatus(), s => Assert.True(s.InBalance && s.Failures == 0, s.ToString()));
    }

    [Fact]
    public async Task Each_endpoints_state_is_in_the_meter_tagged_by_endpoint()
    {
        using var tree = TestFiles.Tree();
        var eicar = tree.File("eicar.com", HashDatabaseScanner.EicarTestString);
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [farm.A.TcpEndpoint, farm.D.UnixEndpoint] });
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(ScanVerdict.Infected, (await TestFiles.ScanAsync(scanner, eicar)).Verdict);
        }

        var seen = new ConcurrentBag<(string Instrument, long Value, string? Endpoint)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter == scanner.Meter)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "endpoint")
                {
                    seen.Add((instrument.Name, value, tag.Value as string));
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();

        Assert.Contains(("onaccess.clamd.scans", 4L, farm.D.UnixEndpoint), seen);
        Assert.Contains(("onaccess.clamd.scans", 0L, farm.A.TcpEndpoint), seen);
        Assert.Contains(("onaccess.clamd.up", 1L, farm.A.TcpEndpoint), seen);
        Assert.Contains(("onaccess.clamd.in_flight", 0L, farm.D.UnixEndpoint), seen);
        Assert.Contains(("onaccess.clamd.failures", 0L, farm.D.UnixEndpoint), seen);
        Assert.Contains(("onaccess.clamd.ejections", 0L, farm.D.UnixEndpoint), seen);
    }

    [Fact]
    public async Task The_farm_and_its_settings_bind_from_configuration()
    {
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Clamd:Endpoints:0"] = farm.A.TcpEndpoint,
            ["Clamd:Endpoints:1"] = farm.D.UnixEndpoint,
            ["Clamd:ReplyTimeout"] = "00:00:00.250",
            ["Clamd:EjectAfterFailures"] = "2",
            ["Clamd:ProbeInterval"] = "00:00:02",
        }).Build();
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        services.AddOnAccessScanning(o => o.IncludePaths = ["/nonexistent"]).AddClamdScanner(configuration.GetSection("Clamd"));
        await using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<ClamdScannerOptions>>().Value;
        Assert.Equal(TimeSpan.FromMilliseconds(250), options.ReplyTimeout);
        Assert.Equal(2, options.EjectAfterFailures);
        Assert.Equal(TimeSpan.FromSeconds(2), options.ProbeInterval);
        Assert.Equal([farm.A.TcpEndpoint, farm.D.UnixEndpoint], provider.GetRequiredService<ClamdScanner>().Endpoints);
    }

    [Fact]
    public void Settings_out_of_range_are_refused_naming_the_setting()
    {
        Assert.Contains("EjectAfterFailures", Assert.Throws<ArgumentOutOfRangeException>(() => new ClamdScanner(new ClamdScannerOptions { Endpoints = [farm.A.TcpEndpoint], EjectAfterFailures = 0 })).Message, StringComparison.Ordinal);
        Assert.Contains("ProbeInterval", Assert.Throws<ArgumentOutOfRangeException>(() => new ClamdScanner(new ClamdScannerOptions { Endpoints = [farm.A.TcpEndpoint], ProbeInterval = TimeSpan.Zero })).Message, StringComparison.Ordinal);
        Assert.Contains("ReplyTimeout", Assert.Throws<ArgumentOutOfRangeException>(() => new ClamdScanner(new ClamdScannerOptions { Endpoints = [farm.A.TcpEndpoint], ReplyTimeout = TimeSpan.FromSeconds(-1) })).Message, StringComparison.Ordinal);
    }

    private static string?[] Versions(ClamdScanner scanner)
    {
        _ = scanner.Generation; // asks in the background
        return [.. scanner.GetEndpointStatus().Select(s => s.Version)];
    }

    private static string RandomFile(KernelTestSupport.TempTree tree, string name, int size)
    {
        var bytes = new byte[size];
        Random.Shared.NextBytes(bytes);
        var path = tree.Combine(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private sealed class LogCollector : ILogger<ClamdScanner>
    {
        public ConcurrentQueue<(int Id, string Message)> Events { get; } = new();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Events.Enqueue((eventId.Id, formatter(state, exception)));
    }
}
