using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Accounting and identity (issue 12, item 5): the accessing user is known on every decision that anything uses it
/// for, whatever else is configured; accesses dropped unscanned are never counted as allowed.
/// </summary>
public sealed class IdentityTests
{
    /// <summary>
    /// Before: with an exclude path configured, the path was known before the scan, so the request was built with the
    /// user "known" as nothing, and every decision reported no user. Now the user is read as the event is read whenever
    /// a decision or a report uses it, scanned or skipped.
    /// </summary>
    [Fact]
    public async Task The_user_is_known_on_every_decision_with_an_exclude_path_configured()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var file = tree.File("data/clean.txt", "clean");
        var large = tree.File("data/large.txt", new string('x', 100));
        tree.File("data/excluded/other.txt", "clean");
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
        var options = new OnAccessOptions { IncludePaths = [tree.Combine("data")], ExcludePaths = [tree.Combine("data/excluded")], Prevention = true, MaxFileSize = 50 };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());

        Assert.Equal(0, (await Child.CatAsUserAsync(1000, file)).ExitCode);
        Assert.Equal(0, (await Child.CatAsUserAsync(1000, large)).ExitCode);
        Assert.Equal(1000u, (await h.WaitForPathAsync(file)).UserId);
        var skipped = await h.WaitForPathAsync(large);
        Assert.Equal(DecisionReason.TooLarge, skipped.Reason);
        Assert.Equal(1000u, skipped.UserId);
    }

    /// <summary>
    /// Notify-only with OnAccessExcludeUID 0 (the guide's example A): root's short-lived processes are excluded while
    /// the kernel still knows them; when one has already been reaped before its event is read, the user is reported
    /// unknown, never guessed (a reused process ID would name another process's user).
    /// </summary>
    [Fact]
    public async Task In_notify_mode_a_short_lived_root_process_is_excluded_or_reported_unknown_never_misattributed()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var files = Enumerable.Range(0, 50).Select(i => tree.File($"data/f{i}", "clean")).ToList();
        var options = new OnAccessOptions { IncludePaths = [tree.Combine("data")], ExcludeUids = [0] };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());

        foreach (var f in files)
        {
            Assert.Equal("clean", (await Child.CatAsync(f)).StdOut); // notify-only: read, whatever is decided
        }

        foreach (var f in files)
        {
            var e = await h.WaitForPathAsync(f);
            Assert.True(e.Reason == DecisionReason.ExcludedUser || e.UserId is null, $"{f}: {e.Reason} uid {e.UserId}");
        }

        Assert.Contains(h.Events, e => e.Reason == DecisionReason.ExcludedUser);
    }

    [Fact]
    public async Task In_notify_mode_accesses_dropped_for_a_full_queue_are_counted_unscanned_not_allowed()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var files = Enumerable.Range(0, 40).Select(i => tree.File($"data/f{i}", $"clean {i}")).ToList();
        using var scanner = new GatedScanner(); // the one slot stays busy until the test has seen the queue fill
        var options = new OnAccessOptions { IncludePaths = [tree.Combine("data")], MaxThreads = 1 };
        await using var h = await MonitorHarness.StartAsync(tree, options, scanner, new OnAccessEngineOptions { QueueCapacity = 1 });

        await Attacker.RunAsync(["parallel-open", "40", .. files]);
        await h.WaitForAsync(e => e.Reason == DecisionReason.QueueFull);
        scanner.Open();
        var statistics = h.Monitor.GetStatistics();
        Assert.Equal(0, statistics.Allowed);
        Assert.True(statistics.QueueFull > 0);
        Assert.Equal(statistics.QueueFull, statistics.Unscanned);
    }
}
