using System.Diagnostics;
using OnAccess.Config;

namespace OnAccess;

/// <summary>
/// Runs one access's scan: the scanner called up to <c>OnAccessRetryAttempts</c> more times after an error, all
/// within one deadline counted from the access's arrival (<c>OnAccessCurlTimeout</c>), with the lease that proves the
/// file unchanged taken as the scan starts. The scan is awaited to its end, never abandoned: a scanner that never
/// returns keeps its slot, and the <see cref="DeadlineWatch"/> answers the access meanwhile.
/// </summary>
internal sealed class ScanRunner(IScanner scanner, OnAccessPlan plan, CleanVerdicts verdicts, DecisionReporter reporter)
{
    private long _inFlight;

    /// <summary>Scans running now.</summary>
    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>One deadline for the whole event (retries included), counted from its arrival.</summary>
    public async Task<(ScanResult Result, DecisionReason Reason)> ScanAsync(ScanRequest request, WorkItem item, CancellationToken stopping)
    {
        var remaining = TimeSpan.FromSeconds((item.Arrived - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency) + plan.ScanTimeout;
        if (remaining <= TimeSpan.Zero)
        {
            return (ScanResult.Error($"no verdict within {plan.ScanTimeout.TotalMilliseconds} ms"), DecisionReason.Timeout);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(remaining);
        if (item.Event is not null)
        {
            // Taken as the scan starts: it proves the file unchanged until its verdict is remembered (a write before
            // it is read by the scan, or changes the key). Held by running scans and the kernel cache only.
            item.Lease ??= verdicts.BeginScan(item.File);
        }

        Interlocked.Increment(ref _inFlight);
        item.Scanning = true;
        var started = Stopwatch.GetTimestamp();
        try
        {
            string? lastError = null;
            for (var attempt = 0; attempt <= plan.RetryAttempts && !deadline.IsCancellationRequested; attempt++)
            {
                reporter.ScanStarted();
                try
                {
                    // Awaited to its end, not abandoned at the deadline: a scan that never returns keeps its slot
                    // (MaxThreads bounds them) instead of piling up; the deadline answers the open meanwhile.
                    var result = await scanner.ScanAsync(request, deadline.Token).ConfigureAwait(false);
                    if (result.Verdict == ScanVerdict.Skipped)
                    {
                        return (result, DecisionReason.Unscannable);
                    }

                    if (result.Verdict != ScanVerdict.Error)
                    {
                        return (result, DecisionReason.Scanned);
                    }

                    lastError = result.Reason ?? "the scanner reported an error";
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception ex)
                {
                    lastError = $"{ex.GetType().Name}: {ex.Message}";
                }
            }

            return deadline.IsCancellationRequested
                ? (ScanResult.Error($"no verdict within {plan.ScanTimeout.TotalMilliseconds} ms"), stopping.IsCancellationRequested ? DecisionReason.Shutdown : DecisionReason.Timeout)
                : (ScanResult.Error(lastError!), DecisionReason.ScanError);
        }
        finally
        {
            item.Scanning = false;
            Interlocked.Decrement(ref _inFlight);
            reporter.ScanEnded(Stopwatch.GetElapsedTime(started));
        }
    }
}
