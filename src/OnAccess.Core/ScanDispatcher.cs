using System.Diagnostics;
using System.Threading.Channels;
using OnAccess.Config;
using OnAccess.Fanotify;

namespace OnAccess;

/// <summary>
/// Runs scans and answers for them: <c>MaxThreads</c> slots, a bounded queue, retries, and the deadline of the open
/// (<see cref="DeadlineWatch"/>: arrival plus OnAccessCurlTimeout, whatever the scanner does). Every item is decided
/// exactly once, by its scan, its deadline, a full queue or shutdown; the answer comes first, then the caches, then
/// the report. A scan that never returns keeps its slot (and is reported hung), nothing more.
/// </summary>
internal sealed class ScanDispatcher : IDisposable
{
    private readonly ScanRunner _runner;
    private readonly OnAccessPlan _plan;
    private readonly AccessPolicy _policy;
    private readonly CleanVerdicts _verdicts;
    private readonly DecisionReporter _reporter;
    private readonly Func<long> _generation;
    private readonly DetectionActions? _actions;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(ulong Device, ulong Inode), byte> _queuedCloses = new();
    private readonly SemaphoreSlim _slots;
    private readonly Channel<WorkItem> _queue;
    private readonly DeadlineWatch _deadlines;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _workers = [];
    private readonly int _queueCapacity;
    private long _depth; // items admitted to wait that have no slot yet: in the channel, or taken by a worker waiting for one

    /// <param name="scanner">The scanner.</param>
    /// <param name="plan">Slots, retries, timeout.</param>
    /// <param name="queueCapacity">How many items may wait for a slot (however they wait: queued, or taken by a worker that waits for one).</param>
    /// <param name="policy">Verdicts to answers.</param>
    /// <param name="verdicts">Where clean verdicts are remembered.</param>
    /// <param name="reporter">Where decisions go.</param>
    /// <param name="generation">The scanner's signature generation now (a verdict of an older one is not cached).</param>
    /// <param name="actions">What is done about infected files, after their answer (null: nothing).</param>
    public ScanDispatcher(IScanner scanner, OnAccessPlan plan, int queueCapacity, AccessPolicy policy, CleanVerdicts verdicts, DecisionReporter reporter, Func<long> generation, DetectionActions? actions = null)
    {
        _actions = actions;
        _runner = new ScanRunner(scanner, plan, verdicts, reporter);
        _plan = plan;
        _policy = policy;
        _verdicts = verdicts;
        _reporter = reporter;
        _generation = generation;
        _slots = new SemaphoreSlim(plan.MaxThreads, plan.MaxThreads);
        _queueCapacity = queueCapacity;
        _queue = Channel.CreateUnbounded<WorkItem>(new UnboundedChannelOptions { SingleWriter = false }); // bounded by _depth
        _deadlines = new DeadlineWatch(plan.ScanTimeout, Expired, _reporter.ScanHung);
        for (var i = 0; i < plan.MaxThreads; i++)
        {
            _workers.Add(Task.Run(WorkAsync, CancellationToken.None));
        }
    }

    /// <summary>Called after each scan: the <see cref="GroupRotation"/> checks for new signatures there.</summary>
    public Action? AfterScan { get; set; }

    /// <summary>
    /// Whether a scan after a close of this file may be queued: false while one queued earlier has not started (it
    /// will read what this close left). So a burst of closes of one file costs a scan running and one waiting at most.
    /// </summary>
    public bool TryQueueClose(in VerdictKey key) => _queuedCloses.TryAdd((key.Device, key.Inode), 0);

    /// <summary>Items waiting for a slot now.</summary>
    public long QueueDepth => Interlocked.Read(ref _depth);

    /// <summary>Scans running now.</summary>
    public long InFlight => _runner.InFlight;

    /// <summary>Scans still running a whole timeout after their deadline.</summary>
    public int Hung => _deadlines.HungNow;

    /// <summary>
    /// For an access that needs a scan (on the thread that read it): its deadline starts now; returns it when a slot is
    /// free (the caller then runs <see cref="RunAsync"/>), otherwise queues it, or answers it at once when the queue is full.
    /// </summary>
    public WorkItem? Admit(WorkItem item)
    {
        if (item.IsHeld)
        {
            _deadlines.Add(item);
        }

        if (_slots.Wait(0))
        {
            return item;
        }

        Enqueue(item);
        return null;
    }

    /// <summary>
    /// Queues a scan after a close once <paramref name="delay"/> has passed (nothing is held meanwhile): a file whose
    /// change time is newer than <see cref="CleanVerdicts.ChangeTimeMargin"/> cannot have its clean verdict remembered,
    /// so the scan waits until it can, and closes meanwhile are coalesced into it.
    /// </summary>
    public void EnqueueAfter(WorkItem item, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Enqueue(item);
            return;
        }

        _ = Task.Delay(delay, CancellationToken.None).ContinueWith(
            static (_, state) =>
            {
                var (self, work) = ((ScanDispatcher, WorkItem))state!;
                self.Enqueue(work);
            },
            (this, item),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    /// <summary>Queues an item for the next free slot (extra scanning uses this directly: nothing is held).</summary>
    public void Enqueue(WorkItem item)
    {
        // The capacity counts every item waiting for a slot, including those a worker has taken and waits with.
        if (Interlocked.Increment(ref _depth) > _queueCapacity || !_queue.Writer.TryWrite(item))
        {
            Interlocked.Decrement(ref _depth);
            if (item.TryDecide())
            {
                var decision = _policy.QueueFull(item.IsHeld);
                item.Answer(decision);
                _reporter.Finish(item, null, decision, DecisionReason.QueueFull, "the scan queue is full");
                Drop(item);
            }

            ScanOver(item);
        }
    }

    /// <summary>Scans and decides one item in a slot it holds, then gives the slot back.</summary>
    public async Task RunAsync(WorkItem item)
    {
        try
        {
            await ProcessAsync(item).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Never leave an access held: answer by the error policy, then go on.
            if (item.TryDecide())
            {
                var decision = _policy.Answer(ScanVerdict.Error, item.IsHeld);
                item.Answer(decision);
                _reporter.Finish(item, ScanVerdict.Error, decision, DecisionReason.ScanError, ex.Message);
                Drop(item);
            }
        }
        finally
        {
            ScanOver(item);
            _slots.Release();
        }
    }

    /// <summary>
    /// Stops: queued items are allowed (the group is already closed, so the kernel allowed them anyway), workers leave,
    /// and scans still running get at most <paramref name="bound"/> to end; any that do not are abandoned.
    /// </summary>
    /// <returns>How many scans were still running when the bound passed.</returns>
    public async Task<long> StopAsync(TimeSpan bound)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _queue.Writer.TryComplete();
        while (_queue.Reader.TryRead(out var item))
        {
            Interlocked.Decrement(ref _depth);
            Shutdown(item);
        }

        using var cts = new CancellationTokenSource(bound);
        var until = Stopwatch.GetTimestamp() + (long)(bound.TotalSeconds * Stopwatch.Frequency);
        try
        {
            await Task.WhenAll(_workers).WaitAsync(cts.Token).ConfigureAwait(false);
            while (InFlight > 0 && Stopwatch.GetTimestamp() < until)
            {
                await Task.Delay(10, cts.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }

        _deadlines.Dispose();
        return InFlight;
    }

    /// <summary>Releases what <see cref="StopAsync"/> leaves: call it after that.</summary>
    public void Dispose()
    {
        _deadlines.Dispose();
        _stopping.Dispose();
        if (InFlight == 0)
        {
            _slots.Dispose(); // an abandoned scan still releases its slot when it returns
        }
    }

    private async Task WorkAsync()
    {
        try
        {
            await foreach (var item in _queue.Reader.ReadAllAsync(_stopping.Token).ConfigureAwait(false))
            {
                if (item.IsDecided)
                {
                    Interlocked.Decrement(ref _depth);
                    ScanOver(item); // its deadline passed while it waited
                    continue;
                }

                try
                {
                    await _slots.WaitAsync(_stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Decrement(ref _depth);
                    Shutdown(item);
                    return;
                }

                Interlocked.Decrement(ref _depth);
                await RunAsync(item).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ProcessAsync(WorkItem item)
    {
        if (item.IsDecided)
        {
            return; // answered by its deadline while it waited
        }

        if (_stopping.IsCancellationRequested)
        {
            DecideShutdown(item);
            return;
        }

        if (item.Kind == AccessKind.CloseWrite)
        {
            _queuedCloses.TryRemove((item.Key.Device, item.Key.Inode), out _); // from now on a close queues a new scan
        }

        // The path and the user are looked up only if the scanner or a report reads them.
        var source = item.Event;
        var request = new ScanRequest(
            item.File,
            () => (item.RawPath ??= source?.GetRawPath()) is { } raw ? System.Text.Encoding.UTF8.GetString(raw) : null,
            item.Size,
            item.ProcessId,
            item.UserId,
            source is null ? null : source.GetProcessUserId,
            item.Kind);
        var (result, reason) = await _runner.ScanAsync(request, item, _stopping.Token).ConfigureAwait(false);
        if (!item.TryDecide())
        {
            _reporter.LateVerdict(); // its deadline answered it: the verdict came too late to matter
            return;
        }

        var decision = _policy.Answer(result.Verdict, item.IsHeld);
        if (result.Verdict != ScanVerdict.Clean && item.UserId is null && item.Event is { } e)
        {
            item.UserId = e.GetProcessUserId(); // for the report, while a held process still waits
        }

        item.Answer(decision);
        if (result.Verdict == ScanVerdict.Clean && item.Lease is { } lease && item.Key.Generation == _generation())
        {
            // After the answer, nothing it needs. Only clean verdicts are remembered, only for the signatures that produced
            // them, only for a file unchanged since the scan began: the lease, taken before it, proves that whenever this
            // runs (a writer the answer let open the file breaks it, and waits in the kernel until it is let go here or
            // by the lease thread). The kernel cache too after a writer's close: the next open, by anyone, is then
            // answered by the kernel.
            item.Lease = null;
            _verdicts.Remember(lease, item.Key, item.File, (item.IsHeld || item.Kind == AccessKind.CloseWrite) && item.Group is { Retired: false } group ? group : null);
        }

        _reporter.Finish(item, result.Verdict, decision, reason, result.Reason, result.ThreatName);
        if (result.Verdict == ScanVerdict.Infected && _actions is not null)
        {
            try
            {
                // After the answer; the descriptor is duplicated now, while the event's is still open.
                _actions.Submit(item.File, item.RawPath ??= source?.GetRawPath(), item.Key, result.ThreatName ?? "unnamed", item.ProcessId, item.UserId, item.Kind, decision);
            }
            catch (Exception failure) when (failure is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // The decision stands; the item is still dropped below (its descriptor closed).
            }
        }

        Drop(item);
        AfterScan?.Invoke();
    }

    /// <summary>The deadline passed (on the deadline thread): answered by OnAccessDenyOnError, reason timeout.</summary>
    private void Expired(WorkItem item)
    {
        if (!item.TryDecide())
        {
            return;
        }

        var decision = _policy.Answer(null, item.IsHeld);
        try
        {
            if (item.UserId is null && item.Event is { } e)
            {
                item.UserId = e.GetProcessUserId(); // for the report, while the process still waits
            }
        }
        finally
        {
            item.Answer(decision); // whatever happened above, the access is answered
        }

        _reporter.Finish(item, ScanVerdict.Error, decision, DecisionReason.Timeout, $"no verdict within {_plan.ScanTimeout.TotalMilliseconds} ms of the access (OnAccessCurlTimeout)");
        Drop(item);
    }

    /// <summary>An item that will never be scanned, at shutdown: allowed (the group is closed, the kernel allowed it anyway).</summary>
    private void Shutdown(WorkItem item)
    {
        DecideShutdown(item);
        ScanOver(item);
    }

    private void DecideShutdown(WorkItem item)
    {
        if (item.TryDecide())
        {
            var decision = item.IsHeld ? AccessDecision.Allow : AccessDecision.None;
            item.Answer(decision);
            _reporter.Finish(item, null, decision, DecisionReason.Shutdown, null);
            Drop(item);
        }
    }

    /// <summary>The scan side is done with the item (its scan returned, or it will never run): it leaves the deadline watch.</summary>
    private void ScanOver(WorkItem item)
    {
        _deadlines.Remove(item);
        Drop(item);
    }

    /// <summary>The last side done with the item releases it (<see cref="WorkItem.Release"/>).</summary>
    private void Drop(WorkItem item)
    {
        if (!item.Drop())
        {
            return;
        }

        if (item.Kind == AccessKind.CloseWrite)
        {
            _queuedCloses.TryRemove((item.Key.Device, item.Key.Inode), out _); // also when it never ran (deadline, full queue)
        }

        item.Release(_verdicts);
    }
}
