using System.Diagnostics;
using OnAccess.Tests;

namespace OnAccess.ClamAV.Tests;

/// <summary>ClamdScanner against a real clamd (Debian's clamav-daemon) started by the fixture. clamd names signatures from an unofficial database NAME.UNOFFICIAL.</summary>
[Collection(nameof(ClamdCollection))]
public sealed class ClamdScannerTests(SharedClamd clamd)
{
    public static TheoryData<string, ClamdScanMode> Paths => new()
    {
        { "unix", ClamdScanMode.Auto },   // FILDES: the descriptor itself is passed
        { "unix", ClamdScanMode.Stream }, // INSTREAM on the unix socket
        { "tcp", ClamdScanMode.Auto },    // INSTREAM on TCP
    };

    private ClamdScanner Scanner(string transport, ClamdScanMode mode = ClamdScanMode.Auto) =>
        new(new ClamdScannerOptions { Endpoints = [transport == "unix" ? clamd.UnixEndpoint : clamd.TcpEndpoint], Mode = mode, StreamMaxLength = ClamdFixture.StreamMaxLength });

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task EICAR_and_clam_exe_are_infected_and_a_clean_file_is_clean(string transport, ClamdScanMode mode)
    {
        using var tree = TestFiles.Tree();
        await using var scanner = Scanner(transport, mode);
        Assert.Equal("Test.Eicar.UNOFFICIAL", (await TestFiles.ScanAsync(scanner, tree.File("eicar.com", HashDatabaseScanner.EicarTestString))).ThreatName);
        Assert.Equal("Test.ClamExe.UNOFFICIAL", (await TestFiles.ScanAsync(scanner, TestFiles.ClamExe)).ThreatName);
        var clean = await TestFiles.ScanAsync(scanner, tree.File("clean.txt", "nothing to see"));
        Assert.Equal(ScanVerdict.Clean, clean.Verdict);

        // The same session is reused for the next scan.
        Assert.Equal(ScanVerdict.Clean, (await TestFiles.ScanAsync(scanner, tree.File("clean2.txt", "still nothing"))).Verdict);
        Assert.Equal(1, scanner.PeakOpenSessions);

        // Which command went: an infected file over clamd's StreamMaxLength is found only when clamd reads the
        // descriptor (FILDES); streamed (INSTREAM), it is over the limit and skipped.
        var big = tree.Combine("big.bin");
        File.WriteAllBytes(big, SharedClamd.OverStreamLimit);
        var result = await TestFiles.ScanAsync(scanner, big);
        if (transport == "unix" && mode == ClamdScanMode.Auto)
        {
            Assert.Equal("Test.OverStreamLimit.UNOFFICIAL", result.ThreatName);
        }
        else
        {
            Assert.Equal(ScanVerdict.Skipped, result.Verdict);
        }
    }

    [Theory]
    [InlineData("unix", ClamdScanMode.Stream)]
    [InlineData("tcp", ClamdScanMode.Auto)]
    public async Task A_file_over_StreamMaxLength_is_skipped_never_clean(string transport, ClamdScanMode mode)
    {
        using var tree = TestFiles.Tree();
        var big = tree.Combine("big.bin");
        File.WriteAllBytes(big, new byte[ClamdFixture.StreamMaxLength + 1]);
        await using var scanner = Scanner(transport, mode);
        var result = await TestFiles.ScanAsync(scanner, big);
        Assert.Equal(ScanVerdict.Skipped, result.Verdict);
        Assert.Contains("StreamMaxLength", result.Reason, StringComparison.Ordinal);

        // Even when the client's limit is wrong, clamd's own refusal is a skip, not a clean verdict.
        await using var unaware = new ClamdScanner(new ClamdScannerOptions { Endpoints = [transport == "unix" ? clamd.UnixEndpoint : clamd.TcpEndpoint], Mode = ClamdScanMode.Stream, StreamMaxLength = long.MaxValue });
        Assert.Equal(ScanVerdict.Skipped, (await TestFiles.ScanAsync(unaware, big)).Verdict);
    }

    [Fact]
    public async Task Clamds_refusal_of_a_stream_over_its_limit_is_a_skip_even_when_it_closes_while_chunks_are_still_sent()
    {
        // clamd replies and closes as soon as a stream passes its StreamMaxLength; a scanner still sending the rest
        // gets EPIPE. The reply is already in the socket: it is the answer (a skip), not a failed connection (an error).
        using var tree = TestFiles.Tree();
        await using var stub = StubClamd.StartLimited(tree.Combine("clamd.sock"), limit: 4096);
        var big = tree.Combine("big.bin");
        File.WriteAllBytes(big, new byte[8 << 20]);
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = ["unix:" + stub.SocketPath], Mode = ClamdScanMode.Stream });
        for (var i = 0; i < 3; i++)
        {
            var result = await TestFiles.ScanAsync(scanner, big);
            Assert.True(result.Verdict == ScanVerdict.Skipped, $"scan {i}: {result.Verdict}: {result.Reason}");
            Assert.Contains("size limit exceeded", result.Reason, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_clean_reply_to_a_stream_that_was_cut_off_is_never_believed()
    {
        // Only a refusal may end a stream early: an endpoint that says OK and closes before it has read the whole file
        // has not scanned what it did not read, so the scan is an error, never clean (a clean verdict is remembered).
        using var tree = TestFiles.Tree();
        await using var stub = StubClamd.StartLimited(tree.Combine("clamd.sock"), limit: 4096, refusal: "stream: OK");
        var big = tree.Combine("big.bin");
        File.WriteAllBytes(big, new byte[8 << 20]);
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = ["unix:" + stub.SocketPath], Mode = ClamdScanMode.Stream });
        var result = await TestFiles.ScanAsync(scanner, big);
        Assert.True(result.Verdict == ScanVerdict.Error, $"{result.Verdict}: {result.Reason}");
    }

    [Fact]
    public async Task Twenty_parallel_scans_succeed_on_twenty_sessions_at_once()
    {
        // A stub clamd answers no scan until twenty wait for their reply at once: only twenty sessions open together
        // get any answer before its timeout.
        using var tree = TestFiles.Tree();
        await using var stub = StubClamd.Start(tree.Combine("clamd.sock"), hold: 20, KernelTestSupport.Timeout);
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = ["unix:" + stub.SocketPath], Mode = ClamdScanMode.Stream });
        var files = Enumerable.Range(0, 20).Select(i => tree.File($"f{i}", i % 2 == 0 ? HashDatabaseScanner.EicarTestString : $"clean {i}")).ToList();
        var handles = files.Select(f => File.OpenHandle(f)).ToList();
        try
        {
            var scans = handles.Select((h, i) => scanner.ScanAsync(new ScanRequest(h, files[i], RandomAccess.GetLength(h), 0, null, AccessKind.Open), CancellationToken.None).AsTask()).ToList();
            var results = await Task.WhenAll(scans).WaitAsync(KernelTestSupport.Timeout * 2, TestContext.Current.CancellationToken);
            for (var i = 0; i < 20; i++)
            {
                Assert.Equal(i % 2 == 0 ? ScanVerdict.Infected : ScanVerdict.Clean, results[i].Verdict);
            }

            Assert.True(stub.PeakWaiting == 20, $"only {stub.PeakWaiting} scan(s) were waiting at clamd at once: sessions were shared or scans serialised");
            Assert.Equal(20, scanner.PeakOpenSessions);
        }
        finally
        {
            handles.ForEach(h => h.Dispose());
        }
    }

    [Fact]
    public async Task Endpoints_fail_over_in_order()
    {
        using var tree = TestFiles.Tree();
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = ["unix:" + tree.Combine("nobody-listens.sock"), clamd.TcpEndpoint] });
        Assert.Equal("Test.Eicar.UNOFFICIAL", (await TestFiles.ScanAsync(scanner, tree.File("e", HashDatabaseScanner.EicarTestString))).ThreatName);
        Assert.False((await scanner.PingAsync(TestContext.Current.CancellationToken))["unix:" + tree.Combine("nobody-listens.sock")]);
    }

    [Fact]
    public async Task VERSION_gives_a_signature_generation()
    {
        // A clamd of its own: its signatures change here.
        await using var own = new ClamdFixture();
        await own.InitializeAsync();
        var db = own.Tree.Combine("db");
        using var tree = TestFiles.Tree();
        var sample = "detected only from version 2"u8.ToArray();
        var target = tree.File("target", "detected only from version 2");
        ClamdDatabase.WriteDaily(db, 1, [TestFiles.HdbLine("unrelated"u8.ToArray(), "Test.Unrelated")]);
        Assert.Equal("RELOADING", await ClamdDatabase.CommandAsync(own.Socket, "RELOAD"));
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [own.UnixEndpoint] }) { VersionCheckInterval = TimeSpan.Zero };
        await Poll.UntilAsync(async () => (await scanner.GetVersionAsync(TestContext.Current.CancellationToken)).Contains("/1/", StringComparison.Ordinal), "clamd to load version 1");

        // Reading Generation asks clamd in the background; wait until it has seen version 1.
        var before = scanner.Generation;
        await Poll.UntilAsync(
            () =>
            {
                _ = scanner.Generation;
                return scanner.LastVersion is not null;
            },
            "the first VERSION check");
        Assert.StartsWith("ClamAV ", scanner.LastVersion, StringComparison.Ordinal);
        Assert.Contains("/1/", scanner.LastVersion, StringComparison.Ordinal);
        Assert.Equal(before, scanner.Generation);
        Assert.Equal(ScanVerdict.Clean, (await TestFiles.ScanAsync(scanner, target)).Verdict);

        ClamdDatabase.WriteDaily(db, 2, [TestFiles.HdbLine("unrelated"u8.ToArray(), "Test.Unrelated"), TestFiles.HdbLine(sample, "Test.Version2")]);
        Assert.Equal("RELOADING", await ClamdDatabase.CommandAsync(own.Socket, "RELOAD"));
        await Poll.UntilAsync(() => scanner.Generation > before, "Generation to change after clamd loaded version 2");
        Assert.Contains("/2/", scanner.LastVersion, StringComparison.Ordinal);
        Assert.Equal("Test.Version2.UNOFFICIAL", (await TestFiles.ScanAsync(scanner, target)).ThreatName);
    }

    [Fact]
    public void Endpoints_come_from_clamd_conf()
    {
        var conf = Config.ClamdConf.Load(clamd.ConfPath);
        var options = new ClamdScannerOptions().FromClamdConf(conf);
        Assert.Equal([clamd.UnixEndpoint, clamd.TcpEndpoint], options.Endpoints);
        Assert.Equal(ClamdFixture.StreamMaxLength, options.StreamMaxLength);
    }

    [Theory]
    [InlineData("fd[10]: OK", ScanVerdict.Clean, null)]
    [InlineData("stream: Eicar-Test-Signature FOUND", ScanVerdict.Infected, "Eicar-Test-Signature")]
    [InlineData("INSTREAM size limit exceeded. ERROR", ScanVerdict.Skipped, null)]
    [InlineData("fd[10]: lstat() failed: No such file. ERROR", ScanVerdict.Error, null)]
    [InlineData("garbage", ScanVerdict.Error, null)]
    public void Replies_are_classified(string reply, ScanVerdict verdict, string? threat)
    {
        var result = ClamdSession.Interpret(reply);
        Assert.Equal(verdict, result.Verdict);
        Assert.Equal(threat, result.ThreatName);
    }
}

/// <summary>Killing and restarting clamd: alone, since it takes the shared daemon down.</summary>
[Collection(nameof(ClamdCollection))]
public sealed class ClamdRestartTests(SharedClamd clamd)
{
    [Fact]
    public async Task Clamd_killed_during_scans_gives_errors_within_the_deadline_and_a_restarted_clamd_scans_again()
    {
        using var tree = TestFiles.Tree();
        var eicar = tree.File("eicar.com", HashDatabaseScanner.EicarTestString);
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [clamd.UnixEndpoint] });
        Assert.Equal(ScanVerdict.Infected, (await TestFiles.ScanAsync(scanner, eicar)).Verdict);

        var deadline = TimeSpan.FromSeconds(5);
        using var stop = new CancellationTokenSource();
        var results = new System.Collections.Concurrent.ConcurrentBag<(ScanVerdict Verdict, bool Cancelled, TimeSpan Took)>();
        var load = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                // A scan refused at once (clamd gone) completes without ever waiting: without a yield, eight such
                // loops hold every pool thread, and the timers and socket completions of the other scans wait for
                // one (scans seen to "take" 10 s, their 5 s deadline never run).
                await Task.Yield();
                using var handle = File.OpenHandle(TestFiles.ClamExe);
                using var cts = new CancellationTokenSource(deadline);
                var watch = Stopwatch.StartNew();
                ScanVerdict verdict;
                var cancelled = false;
                try
                {
                    verdict = (await scanner.ScanAsync(new ScanRequest(handle, TestFiles.ClamExe, RandomAccess.GetLength(handle), 0, null, AccessKind.Open), cts.Token)).Verdict;
                }
                catch (OperationCanceledException)
                {
                    verdict = ScanVerdict.Error;
                    cancelled = true;
                }

                results.Add((verdict, cancelled, watch.Elapsed));
            }
        })).ToList();

        try
        {
            await Poll.UntilAsync(() => results.Any(r => r.Verdict == ScanVerdict.Infected), "scans under load to succeed");
            clamd.Kill();
            await Poll.UntilAsync(() => results.Any(r => r.Verdict == ScanVerdict.Error && !r.Cancelled), "the scanner to report an error after clamd was killed");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(load).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        }

        try
        {
            Assert.Contains(results, r => r.Verdict == ScanVerdict.Infected);
            Assert.Contains(results, r => r.Verdict == ScanVerdict.Error);
            Assert.All(results, r => Assert.True(r.Took < deadline + TimeSpan.FromSeconds(1), $"a scan took {r.Took.TotalMilliseconds} ms"));
        }
        finally
        {
            await clamd.StartAsync(); // whatever happened: the other tests share this clamd
        }

        Assert.Equal(ScanVerdict.Infected, (await TestFiles.ScanAsync(scanner, eicar)).Verdict);
    }

    /// <summary>
    /// Sessions kept idle for reuse all die with the clamd that served them. The first scan after a restart must not
    /// fail because its retry took another dead session from the pool (it used to: "protocol: the connection to
    /// clamd failed" whenever two or more idle sessions were left).
    /// </summary>
    [Fact]
    public async Task After_clamd_restarts_no_scan_fails_on_the_sessions_the_old_one_left_idle()
    {
        using var tree = TestFiles.Tree();
        var eicar = tree.File("eicar.com", HashDatabaseScanner.EicarTestString);
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [clamd.UnixEndpoint], MaxIdleSessions = 8 });
        var scans = Enumerable.Range(0, 8).Select(_ => TestFiles.ScanAsync(scanner, eicar)).ToList();
        Assert.All(await Task.WhenAll(scans), r => Assert.Equal(ScanVerdict.Infected, r.Verdict));
        Assert.True(scanner.PeakOpenSessions >= 2, $"only {scanner.PeakOpenSessions} session was opened: the pool holds too few to test");

        clamd.Kill();
        await clamd.StartAsync();
        for (var i = 0; i < 8; i++)
        {
            var result = await TestFiles.ScanAsync(scanner, eicar);
            Assert.True(result.Verdict == ScanVerdict.Infected, $"scan {i} after the restart: {result.Verdict} {result.Reason}");
        }
    }
}

[CollectionDefinition(nameof(ClamdCollection))]
public sealed class ClamdCollection : ICollectionFixture<SharedClamd>;

/// <summary>The clamd these tests share: <see cref="ClamdFixture"/> plus a signature for a file over its StreamMaxLength, which only FILDES can scan.</summary>
public sealed class SharedClamd : ClamdFixture
{
    /// <summary>Twice StreamMaxLength and a byte: INSTREAM cannot carry it, FILDES can.</summary>
    public static byte[] OverStreamLimit { get; } = [.. Enumerable.Range(0, (int)(2 * StreamMaxLength) + 1).Select(i => (byte)(i % 251))];

    protected override IEnumerable<string> ExtraSignatures => [TestFiles.HdbLine(OverStreamLimit, "Test.OverStreamLimit")];
}
