using System.Diagnostics;
using System.Globalization;
using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// The deadline belongs to the open (issue 12, item 3): every permission event is answered within the scan timeout
/// of its arrival plus a stated bound (<see cref="Bound"/>, docs/reliability.md), by OnAccessDenyOnError, whatever
/// the scanner does: return late, never return, block its thread, or start a helper that opens protected files.
/// Time spent waiting for a slot counts. The durations are the openers' own, measured around open(2).
/// </summary>
public sealed class DeadlineTests
{
    /// <summary>The stated bound beyond the scan timeout (docs/reliability.md).</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromMilliseconds(100);

    private static readonly TimeSpan ScanTimeout = TimeSpan.FromMilliseconds(500);

    public enum Misbehaviour
    {
        Late,
        Never,
        Blocking,
        HelperOpensProtectedFile,
    }

    [Theory]
    [InlineData(Misbehaviour.Late, true)]
    [InlineData(Misbehaviour.Late, false)]
    [InlineData(Misbehaviour.Never, true)]
    [InlineData(Misbehaviour.Never, false)]
    [InlineData(Misbehaviour.Blocking, true)]
    [InlineData(Misbehaviour.Blocking, false)]
    [InlineData(Misbehaviour.HelperOpensProtectedFile, true)]
    [InlineData(Misbehaviour.HelperOpensProtectedFile, false)]
    public async Task Every_open_is_answered_by_the_policy_within_the_deadline_whatever_the_scanner_does(Misbehaviour misbehaviour, bool denyOnError)
    {
        KernelTestSupport.RequireRoot();
        const int Opens = 24;
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var data = tree.Combine("data");
        var files = Enumerable.Range(0, Opens).Select(i => tree.File($"data/f{i}", "content")).ToList();
        var helperTarget = tree.File("data/helper-target", "content");
        using var scanner = new MisbehavingScanner(misbehaviour, helperTarget);
        var options = new OnAccessOptions { IncludePaths = [data], Prevention = true, MaxThreads = 2, ScanTimeout = ScanTimeout, DenyOnError = denyOnError };
        // The helper's target is never remembered clean: each helper's open needs a slot, as the first one's does. (With
        // the caches on, a helper whose open happened to find a free slot before both were taken got its target cached,
        // every later helper passed at once, and no open reached its deadline: a test of nothing.)
        var engine = misbehaviour == Misbehaviour.HelperOpensProtectedFile ? new OnAccessEngineOptions { KernelCache = false, CacheCapacity = 0 } : null;
        var h = await MonitorHarness.StartAsync(tree, options, scanner, engine);
        try
        {
            var result = await Attacker.RunAsync(TimeSpan.FromSeconds(60), ["parallel-open", Opens.ToString(CultureInfo.InvariantCulture), .. files]);
            var lines = result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 3)).ToList();
            Assert.Equal(Opens, lines.Count);
            var limit = (ScanTimeout + Bound).TotalMilliseconds;
            var slowest = lines.Max(l => double.Parse(l[0], CultureInfo.InvariantCulture));
            TestContext.Current.TestOutputHelper?.WriteLine($"slowest open {slowest:0.0} ms (deadline {ScanTimeout.TotalMilliseconds:0} ms, limit {limit:0} ms)");
            Assert.Empty(lines.Where(l => double.Parse(l[0], CultureInfo.InvariantCulture) > limit).Select(l => string.Join(' ', l)));

            // Each answer is the policy's at the deadline (reason timeout), or a clean verdict that came just before it.
            var timedOut = 0;
            foreach (var l in lines)
            {
                var decision = await h.WaitForAsync(e => e.Path == l[2] && e.Reason is DecisionReason.Timeout or DecisionReason.Scanned);
                var expected = decision.Reason == DecisionReason.Timeout ? (denyOnError ? "DENIED" : "OK") : "OK";
                Assert.True(expected == l[1], $"{string.Join(' ', l)}: decided {decision.Decision} ({decision.Reason})");
                timedOut += decision.Reason == DecisionReason.Timeout ? 1 : 0;
            }

            Assert.True(timedOut >= Opens / 2, $"only {timedOut} of {Opens} opens reached their deadline: the scanner did not misbehave as meant");
            Assert.True(h.Monitor.GetStatistics().Timeouts >= timedOut);
        }
        finally
        {
            // Stopping is bounded too, with scans that never end still running.
            var stopping = Stopwatch.StartNew();
            await h.DisposeAsync();
            Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(3), $"StopAsync took {stopping.Elapsed}");
            scanner.Release();
        }
    }

    /// <summary>Misbehaves on every file but the helper's target, which it passes at once.</summary>
    private sealed class MisbehavingScanner(Misbehaviour misbehaviour, string helperTarget) : IScanner, IDisposable
    {
        private readonly ManualResetEventSlim _released = new();

        public void Release() => _released.Set();

        public async ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
        {
            if (request.Path == helperTarget)
            {
                return ScanResult.Clean;
            }

            switch (misbehaviour)
            {
                case Misbehaviour.Late:
                    await Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None); // ignores its token
                    return ScanResult.Clean;
                case Misbehaviour.Never:
                    await Task.Delay(Timeout.Infinite, CancellationToken.None);
                    return ScanResult.Clean;
                case Misbehaviour.Blocking:
                    _released.Wait(TimeSpan.FromSeconds(30), CancellationToken.None); // blocks its thread until the test ends
                    return ScanResult.Clean;
                default:
                    // A synchronous call into a helper that opens a protected file, whose event needs a slot too.
                    using (var helper = Process.Start(new ProcessStartInfo("/bin/cat", helperTarget) { RedirectStandardOutput = true, RedirectStandardError = true })!)
                    {
                        helper.WaitForExit(30_000);
                    }

                    return ScanResult.Clean;
            }
        }

        public void Dispose() => _released.Dispose();
    }
}
