using OnAccess.Config;
using OnAccess.Tests;

namespace OnAccess.Core.Tests;

/// <summary>
/// Each documented decision, end to end: a real open (or exec, or read) held by the kernel and answered with EPERM or
/// allowed, and the decision's reason as observers see it. As root; marks only on the test's own trees.
/// </summary>
[Collection(nameof(KernelCollection))]
public sealed class PolicyEndToEndTests
{
    private const uint User = 1000;
    private const int MiB = 1024 * 1024;

    /// <summary>OnAccessMaxFileSize: a file larger than the limit is allowed unscanned (TooLarge); one of exactly the limit is scanned.</summary>
    [Theory]
    [InlineData(null, 5 * MiB)] // the default: 5M
    [InlineData("1M", MiB)]
    public async Task Files_over_OnAccessMaxFileSize_are_allowed_unscanned_and_files_up_to_it_are_scanned(string? directive, int limit)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var data = tree.Combine("data");
        var atLimit = WriteEicarOfSize(Path.Combine(data, "at-limit.com"), limit);
        var over = WriteEicarOfSize(Path.Combine(data, "over-limit.com"), limit + 1);
        var conf = ClamdConf.Parse($"OnAccessIncludePath {data}\nOnAccessPrevention yes\n" + (directive is null ? string.Empty : $"OnAccessMaxFileSize {directive}\n"));
        await using var h = await MonitorHarness.StartAsync(tree, conf.ToOnAccessOptions(), new EicarScanner());

        Assert.True(Child.WasDenied(await Child.CatAsync(atLimit)));
        Assert.Equal(DecisionReason.Scanned, (await h.WaitForPathAsync(atLimit)).Reason);

        var read = await KernelTestSupport.RunAsync("/bin/sh", "-c", $"head -c 68 '{over}'");
        Assert.Equal(EicarScanner.Eicar, read.StdOut);
        var skipped = await h.WaitForPathAsync(over);
        Assert.Equal((AccessDecision.Allow, DecisionReason.TooLarge, (ScanVerdict?)null), (skipped.Decision, skipped.Reason, skipped.Verdict));
        Assert.DoesNotContain(((EicarScanner)h.Scanner).Requests, r => r.Path == over);
    }

    /// <summary>
    /// An infected program is not executed: execve fails with EPERM. With ExecPermission (the default) the decision
    /// is the exec's (FAN_OPEN_EXEC_PERM); without it the same open is held as an open. A clean program runs.
    /// </summary>
    [Theory]
    [InlineData(true, AccessKind.Exec)]
    [InlineData(false, AccessKind.Open)]
    public async Task An_infected_program_is_not_executed(bool execPermission, AccessKind expectedKind)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var bin = tree.Combine("bin");
        Directory.CreateDirectory(bin);
        var clean = Path.Combine(bin, "clean-true");
        var infected = Path.Combine(bin, "infected-true");
        File.Copy("/bin/true", clean);
        File.Copy("/bin/true", infected);
        await File.AppendAllTextAsync(infected, EicarScanner.Eicar, TestContext.Current.CancellationToken); // trailing bytes: still a valid program
        foreach (var program in new[] { clean, infected })
        {
            File.SetUnixFileMode(program, (UnixFileMode)0b111_101_101);
        }

        var options = new OnAccessOptions { IncludePaths = [bin], Prevention = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new ExecutableEicarScanner(), new OnAccessEngineOptions { ExecPermission = execPermission });

        var ran = await KernelTestSupport.RunAsync(clean);
        Assert.Equal(0, ran.ExitCode);

        var refused = await KernelTestSupport.RunAsync("/bin/sh", "-c", $"'{infected}'; echo \"rc=$?\"");
        Assert.Contains("Operation not permitted", refused.StdErr, StringComparison.Ordinal);
        Assert.Contains("rc=126", refused.StdOut, StringComparison.Ordinal);
        var denied = await h.WaitForAsync(e => e.Path == infected && e.Decision == AccessDecision.Deny);
        Assert.Equal(expectedKind, denied.Kind);
    }

    /// <summary>
    /// The queue-full policy with prevention: one slot, held by a gated scan, and a queue of one; the third access is
    /// answered at once by QueueFullDecision, or, when that is not set, by OnAccessDenyOnError.
    /// </summary>
    [Theory]
    [InlineData(AccessDecision.Deny, false, true)]
    [InlineData(AccessDecision.Allow, true, false)]
    [InlineData(null, true, true)]
    [InlineData(null, false, false)]
    public async Task When_the_queue_is_full_an_access_is_answered_at_once_by_the_queue_full_policy(AccessDecision? queueFull, bool denyOnError, bool expectDenied)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var data = tree.Combine("data");
        var files = Enumerable.Range(0, 3).Select(i => tree.File($"data/f{i}", $"clean {i}")).ToList();
        using var scanner = new GatedScanner();
        var options = new OnAccessOptions { IncludePaths = [data], Prevention = true, MaxThreads = 1, DenyOnError = denyOnError };
        await using var h = await MonitorHarness.StartAsync(tree, options, scanner, new OnAccessEngineOptions { QueueCapacity = 1, QueueFullDecision = queueFull });

        // The first open takes the slot, the second the queue; both stay held until the gate opens.
        var first = Child.CatAsync(files[0]);
        await Until(() => scanner.Entered == 1);
        var second = Child.CatAsync(files[1]);
        await Until(() => h.Monitor.GetStatistics().QueueDepth == 1);

        var third = await Child.CatAsync(files[2]);
        Assert.Equal(expectDenied, Child.WasDenied(third));
        Assert.Equal(expectDenied ? string.Empty : "clean 2", third.StdOut);
        var decision = await h.WaitForPathAsync(files[2]);
        Assert.Equal((expectDenied ? AccessDecision.Deny : AccessDecision.Allow, DecisionReason.QueueFull), (decision.Decision, decision.Reason));
        Assert.Equal(1, h.Monitor.GetStatistics().QueueFull);

        scanner.Open();
        Assert.Equal("clean 0", (await first).StdOut);
        Assert.Equal("clean 1", (await second).StdOut);
    }

    /// <summary>OnAccessExcludeUID with prevention: the excluded user reads EICAR (reason ExcludedUser), root is denied.</summary>
    [Fact]
    public async Task An_excluded_UID_reads_an_infected_file_under_prevention_and_others_are_denied()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
        var eicar = tree.File("data/eicar.com", EicarScanner.Eicar);
        var conf = ClamdConf.Parse($"OnAccessIncludePath {tree.Combine("data")}\nOnAccessPrevention yes\nOnAccessExcludeUID {User}\n");
        await using var h = await MonitorHarness.StartAsync(tree, conf.ToOnAccessOptions(), new EicarScanner());

        var asUser = await Child.CatAsUserAsync(User, eicar);
        Assert.Equal(EicarScanner.Eicar, asUser.StdOut);
        var excluded = await h.WaitForAsync(e => e.Path == eicar && e.UserId == User);
        Assert.Equal((AccessDecision.Allow, DecisionReason.ExcludedUser, (ScanVerdict?)null), (excluded.Decision, excluded.Reason, excluded.Verdict));

        Assert.True(Child.WasDenied(await Child.CatAsync(eicar)));
    }

    /// <summary>
    /// Stopping with an access queued: it is reported with reason Shutdown, and the opener is let go (the group closes
    /// first, so the kernel allows it).
    /// </summary>
    [Fact]
    public async Task An_access_still_queued_at_stop_is_let_go_and_reported_as_shutdown()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var files = Enumerable.Range(0, 2).Select(i => tree.File($"data/f{i}", $"clean {i}")).ToList();
        using var scanner = new GatedScanner();
        var options = new OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true, MaxThreads = 1 };
        var h = await MonitorHarness.StartAsync(tree, options, scanner);
        try
        {
            var first = Child.CatAsync(files[0]);
            await Until(() => scanner.Entered == 1);
            var queued = Child.CatAsync(files[1]);
            await Until(() => h.Monitor.GetStatistics().QueueDepth == 1);

            await h.Monitor.StopAsync(CancellationToken.None);
            Assert.Equal("clean 1", (await queued).StdOut);
            var shutdown = await h.WaitForPathAsync(files[1]);
            Assert.Equal(DecisionReason.Shutdown, shutdown.Reason);
            scanner.Open();
            Assert.Equal("clean 0", (await first).StdOut);
        }
        finally
        {
            scanner.Open();
            await h.DisposeAsync();
        }
    }

    /// <summary>With the kernel cache off, the second open of a clean file is answered from the user-space cache (reason Cached).</summary>
    [Fact]
    public async Task Without_the_kernel_cache_a_second_open_is_answered_from_the_verdict_cache()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var file = tree.File("data/clean.txt", "clean");
        var options = new OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true };
        var scanner = new EicarScanner();
        await using var h = await MonitorHarness.StartAsync(tree, options, scanner, new OnAccessEngineOptions { KernelCache = false });

        // Only a file whose ctime is older than the clock's granularity is remembered (docs/reliability.md).
        await Until(() => DateTime.UtcNow - File.GetLastWriteTimeUtc(file) > TimeSpan.FromMilliseconds(100));

        var first = await Child.CatAsync(file);
        Assert.Equal("clean", first.StdOut);
        Assert.Equal(DecisionReason.Scanned, (await h.WaitForAsync(e => e.ProcessId == first.Pid)).Reason);
        var second = await Child.CatAsync(file);
        Assert.Equal("clean", second.StdOut);
        Assert.Equal(DecisionReason.Cached, (await h.WaitForAsync(e => e.ProcessId == second.Pid)).Reason);
        Assert.Single(scanner.Requests);
        Assert.Equal(1, h.Monitor.GetStatistics().CacheHits);
    }

    /// <summary>
    /// AccessPermission (FAN_ACCESS_PERM): a file opened while clean and made infected afterwards is scanned again at
    /// the next read, and the read fails with EPERM (kind Read).
    /// </summary>
    [Fact]
    public async Task With_AccessPermission_a_read_of_content_infected_after_the_open_is_denied()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var file = tree.File("data/doc.txt", "clean");
        var options = new OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner(), new OnAccessEngineOptions { AccessPermission = true });

        // The reader opens the file, waits for the test on its stdin, then reads through the descriptor it holds.
        var start = new System.Diagnostics.ProcessStartInfo("/bin/sh") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"exec 3< '{file}'; read -r go; cat <&3");
        using var reader = System.Diagnostics.Process.Start(start)!;
        using var timeout = new CancellationTokenSource(KernelTestSupport.Timeout);
        var opened = await h.WaitForAsync(e => e.Path == file && e.Kind == AccessKind.Open);
        Assert.Equal(AccessDecision.Allow, opened.Decision);

        await File.WriteAllTextAsync(file, EicarScanner.Eicar, TestContext.Current.CancellationToken);
        await reader.StandardInput.WriteLineAsync("go");
        reader.StandardInput.Close();
        var stdout = reader.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = reader.StandardError.ReadToEndAsync(timeout.Token);
        await reader.WaitForExitAsync(timeout.Token);
        Assert.Contains("Operation not permitted", await stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("EICAR", await stdout, StringComparison.Ordinal);
        var denied = await h.WaitForAsync(e => e.Path == file && e.Decision == AccessDecision.Deny);
        Assert.Equal(AccessKind.Read, denied.Kind);
    }

    /// <summary>
    /// A kernel queue overflow reaches the monitor's statistics: notify-only, a group created while
    /// fs.fanotify.max_queued_events is 1, and one process opening 200 files as fast as it can.
    /// </summary>
    [Fact]
    public async Task A_kernel_queue_overflow_is_counted()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var files = Enumerable.Range(0, 200).Select(i => tree.File($"data/f{i}", "x")).ToList();
        MonitorHarness h;
        using (KernelTestSupport.SetSysctl("/proc/sys/fs/fanotify/max_queued_events", "1"))
        {
            h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [tree.Combine("data")] }, new EicarScanner());
        }

        await using (h)
        {
            var cat = await KernelTestSupport.RunAsync("/bin/cat", [.. files]);
            Assert.Equal(0, cat.ExitCode);
            await Until(() => h.Monitor.GetStatistics().Overflows > 0);
            Assert.True(h.Monitor.GetStatistics().Overflows > 0);
        }
    }

    /// <summary>
    /// Not a regular file: the kernel (6.18) raises no open events for FIFOs, devices or sockets, so the engine meets
    /// one only where an older kernel does; the policy still answers it unscanned (a FIFO's reader would wait forever).
    /// </summary>
    [Fact]
    public void Something_that_is_not_a_regular_file_is_allowed_unscanned()
    {
        var plan = OnAccessPlan.Resolve(new OnAccessOptions { IncludePaths = ["/srv"], Prevention = true });
        var policy = new AccessPolicy(plan, [], null);
        Assert.Equal(DecisionReason.NotRegularFile, policy.Skip(0, "/srv/fifo"u8, isRegularFile: false, size: 0));
        Assert.Null(policy.Skip(0, "/srv/file"u8, isRegularFile: true, size: 0));
    }

    /// <summary>
    /// With include paths, excluded directories are not marked (the guide example B test shows no event at all), and
    /// an access the kernel still reports (a directory moved below an exclude path, before its unmarking) is scanned:
    /// a path read after the open is not believed to exclude (a rename can have changed it since). With mount paths
    /// (the scanner's own directories, OA1024) it is.
    /// </summary>
    [Fact]
    public void With_include_paths_an_access_below_an_exclude_path_is_not_excluded_by_its_path()
    {
        var plan = OnAccessPlan.Resolve(new OnAccessOptions { IncludePaths = ["/srv"], ExcludePaths = ["/srv/skip"], Prevention = true });
        var policy = new AccessPolicy(plan, [], null);
        Assert.Null(policy.Skip(0, "/srv/skip/a/eicar.com"u8, isRegularFile: true, size: 68));
        Assert.False(policy.UsesPath);
        Assert.Equal(DecisionReason.ExcludedUser, new AccessPolicy(plan, [1000u], null).Skip(1000, "/srv/skip/x"u8, isRegularFile: true, size: 1));
    }

    private static string WriteEicarOfSize(string path, int size)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var bytes = new byte[size];
        System.Text.Encoding.ASCII.GetBytes(EicarScanner.Eicar).CopyTo(bytes, 0);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static async Task Until(Func<bool> condition)
    {
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        while (!condition())
        {
            await Task.Delay(5, cts.Token);
        }
    }

    /// <summary>Flags EICAR anywhere in the file (a program with EICAR appended), read through the descriptor.</summary>
    private sealed class ExecutableEicarScanner : IScanner
    {
        public ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
        {
            var bytes = new byte[request.Size];
            var n = RandomAccess.Read(request.File, bytes, 0);
            var text = System.Text.Encoding.Latin1.GetString(bytes, 0, n);
            return ValueTask.FromResult(text.Contains(EicarScanner.Eicar, StringComparison.Ordinal) ? ScanResult.Infected("Eicar-Test-Signature") : ScanResult.Clean);
        }
    }
}
