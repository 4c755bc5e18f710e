using System.Diagnostics;
using OnAccess.Fanotify;

namespace OnAccess;

/// <summary>
/// Reads one fanotify group and decides its events on the thread the kernel wakes, with a rescuer beside it.
/// </summary>
/// <remarks>
/// <para>
/// The reader thread waits in <see cref="FanotifyGroup.ReadEvents"/>, decides what needs no scan and answers it at once,
/// and runs the synchronous part of a small file's scan itself: so one wake-up, the kernel's, serves a whole open, as
/// in a one-thread C listener (a hand-off to another thread costs a second wake-up, more than the rest of the path on
/// an idle machine). Larger files' scans go to the thread pool.
/// </para>
/// <para>
/// A scanner may block, and may even open a protected file, whose event only a reading thread can answer. So while
/// scans run here, a rescuer thread looks every <see cref="CoarseTickMilliseconds"/> ms whether one has held the
/// reader for <see cref="TickMilliseconds"/> ms or more; then it reads and decides in its place (sending its scans to
/// the thread pool) until that scan ends. Own-process opens are then answered within about 11 ms, never deadlocked,
/// and a slow scan delays other accesses by at most that much. The rescuer costs nothing per event (a timestamp and
/// three volatile writes per scan here); it wakes a hundred times a second while scans run here, never per scan (a
/// wake-up of another thread is a context switch an open may wait behind), and sleeps for good after
/// <see cref="IdleMilliseconds"/> ms without a scan here.
/// </para>
/// </remarks>
internal sealed class EventLoop
{
    /// <summary>How often the rescuer looks whether a scan holds the reader.</summary>
    internal const int CoarseTickMilliseconds = 10;

    /// <summary>How long a scan may hold the reader (when the rescuer looks) before the rescuer reads in its place.</summary>
    internal const int TickMilliseconds = 1;

    /// <summary>How long without a scan on the reader before the rescuer sleeps until the next one.</summary>
    internal const int IdleMilliseconds = 200;

    /// <summary>How often <see cref="IsRespondingAsync"/> looks again while events wait.</summary>
    private const int LivenessPollMilliseconds = 10;

    private readonly FanotifyGroup _group;
    private readonly GroupState _state;
    private readonly FastPath _fastPath;
    private readonly ScanDispatcher _dispatcher;
    private readonly Action<Exception> _failed;
    private readonly object _gate = new();
    private bool _activated;
    private readonly TaskCompletionSource _readingStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _scanning; // the number of the scan the reader runs, 0 between scans
    private long _scans; // scans run here so far (written by the reader only)
    private long _scanStarted; // when the last of them started (a Stopwatch timestamp)
    private int _rescuerAwake;
    private long _rescues;
    private long _reads;
    private volatile bool _stopping;

    /// <param name="state">The group to read, and what the fast path needs of it.</param>
    /// <param name="fastPath">Decides each event: answers it, or admits a scan (which then holds a slot). Called by
    /// the reader and the rescuer at once; it never blocks.</param>
    /// <param name="dispatcher">Runs an admitted scan; its synchronous part runs on the calling thread.</param>
    /// <param name="failed">Reading failed for good; the callee replaces the group.</param>
    public EventLoop(GroupState state, FastPath fastPath, ScanDispatcher dispatcher, Action<Exception> failed)
    {
        _group = state.Group;
        _state = state;
        _fastPath = fastPath;
        _dispatcher = dispatcher;
        _failed = failed;
    }

    /// <summary>Completes when the reader has stopped (the group closed or failed); scans still running finish on their own.</summary>
    public Task ReadingStopped => _readingStopped.Task;

    /// <summary>How many times the rescuer took over from a scan that held the reader (for tests and diagnostics).</summary>
    public long Rescues => Interlocked.Read(ref _rescues);

    /// <summary>How many reads returned events, by the reader and the rescuer (liveness: see <see cref="IsRespondingAsync"/>).</summary>
    public long Reads => Interlocked.Read(ref _reads);

    /// <summary>
    /// Whether this loop reads the group's events: true while nothing waits unread, or a read is seen within
    /// <paramref name="stallAfter"/>; false when events wait that long with no read, the loop stuck in a decision (a
    /// reader whose scan holds it is relieved by the rescuer within a tick, so that is not a stall) or stopped.
    /// </summary>
    public async Task<bool> IsRespondingAsync(TimeSpan stallAfter, CancellationToken cancellationToken)
    {
        var reads = Reads;
        return await QueueEmptiesAsync(stallAfter, () => Reads != reads, LivenessPollMilliseconds, cancellationToken).ConfigureAwait(false)
            && !ReadingStopped.IsCompleted;
    }

    /// <summary>
    /// Waits (at most <paramref name="bound"/>) until the kernel holds no unread event for this group: before a group is
    /// retired, so that every open it alone may hold (queued before its successor's marks were in place) is taken by a
    /// read that began before the retirement, and so decided as usual (see <see cref="FastPath.Decide"/>).
    /// </summary>
    /// <returns>False when events still waited at the bound.</returns>
    public Task<bool> ReadQueuedAsync(TimeSpan bound) => QueueEmptiesAsync(bound, progressed: null, 1, CancellationToken.None);

    /// <summary>
    /// Polls the group's queue until nothing waits unread (or the loop stopped, or <paramref name="progressed"/> says
    /// enough was seen): true; false when events still wait at <paramref name="bound"/>.
    /// </summary>
    private async Task<bool> QueueEmptiesAsync(TimeSpan bound, Func<bool>? progressed, int pollMilliseconds, CancellationToken cancellationToken)
    {
        var until = Stopwatch.GetTimestamp() + (long)(bound.TotalSeconds * Stopwatch.Frequency);
        while (!ReadingStopped.IsCompleted && HasPendingEvents())
        {
            if (progressed?.Invoke() == true)
            {
                return true;
            }

            if (Stopwatch.GetTimestamp() >= until)
            {
                return false;
            }

            await Task.Delay(pollMilliseconds, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    private bool HasPendingEvents()
    {
        try
        {
            return _group.HasPendingEvents;
        }
        catch (ObjectDisposedException)
        {
            return false; // closed: the loop stops reading
        }
    }

    public void Start()
    {
        new Thread(Read) { IsBackground = true, Name = "OnAccess events" }.Start();
        new Thread(Rescue) { IsBackground = true, Name = "OnAccess rescuer" }.Start();
    }

    private void Read()
    {
        var batch = new List<FanotifyEvent>();
        var scans = new List<WorkItem>();
        try
        {
            while (TryRead(batch, Timeout.Infinite, out var retired))
            {
                // Every event of the batch is decided (and a scan's deadline started) before any scan runs here: an
                // event read behind a scan that blocks would otherwise wait for it, unseen by its deadline.
                for (var i = 0; i < batch.Count; i++)
                {
                    var e = batch[i];
                    batch[i] = null!;
                    if (_fastPath.Decide(e, _state, retired) is { } work)
                    {
                        scans.Add(work);
                    }
                }

                batch.Clear();
                for (var i = 0; i < scans.Count; i++)
                {
                    // The last one may run on this awake thread (the rescuer reads meanwhile); the others go to the pool.
                    if (i == scans.Count - 1 && scans[i].Size <= FastPath.InlineScanMaxSize && scans[i].Kind != AccessKind.CloseWrite)
                    {
                        ScanHere(scans[i]);
                    }
                    else
                    {
                        ToThreadPool(scans[i]);
                    }
                }

                scans.Clear();
            }
        }
        catch (Exception e)
        {
            _failed(e); // a bug in deciding: the group closes, so no access stays held
        }
        finally
        {
            foreach (var e in batch)
            {
                e?.Dispose();
            }

            foreach (var work in scans)
            {
                ToThreadPool(work); // admitted: each holds a slot and must run to give it back
            }

            StopReading();
        }
    }

    private void ScanHere(WorkItem work)
    {
        var number = _scans + 1;
        Volatile.Write(ref _scans, number);
        Volatile.Write(ref _scanStarted, Stopwatch.GetTimestamp()); // before the number: a look that sees the number sees this start or a later one
        Interlocked.Exchange(ref _scanning, number);
        if (Volatile.Read(ref _rescuerAwake) == 0 && Interlocked.CompareExchange(ref _rescuerAwake, 1, 0) == 0)
        {
            Activate();
        }

        try
        {
            _ = _dispatcher.RunAsync(work);
        }
        finally
        {
            Volatile.Write(ref _scanning, 0);
        }
    }

    private void ToThreadPool(WorkItem work) =>
        ThreadPool.UnsafeQueueUserWorkItem(static state => _ = state.Dispatcher.RunAsync(state.Work), (Dispatcher: _dispatcher, Work: work), preferLocal: false);

    /// <summary>Reads; when the group has closed (or reading failed), stops both threads' reading for good.</summary>
    /// <param name="batch">Where the events go.</param>
    /// <param name="millisecondsTimeout">How long to wait for the first one.</param>
    /// <param name="retired">Whether the group was retired before this read began (see <see cref="FastPath.Decide"/>).</param>
    private bool TryRead(List<FanotifyEvent> batch, int millisecondsTimeout, out bool retired)
    {
        retired = _state.Retired;
        try
        {
            if (!_stopping && _group.ReadEvents(batch, millisecondsTimeout))
            {
                if (batch.Count > 0)
                {
                    Interlocked.Increment(ref _reads);
                }

                return true;
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or InvalidOperationException)
        {
            _failed(e);
        }

        StopReading();
        return false;
    }

    /// <summary>
    /// Nothing more will be read. Whichever thread sees it first says so: a reader held by a scan that never returns
    /// must not keep the monitor from stopping (the rescuer, reading in its place, sees the group close).
    /// </summary>
    private void StopReading()
    {
        _stopping = true;
        Activate();
        _readingStopped.TrySetResult();
    }

    private void Rescue()
    {
        var batch = new List<FanotifyEvent>();
        try
        {
            while (!_stopping)
            {
                lock (_gate)
                {
                    while (!_activated && !_stopping)
                    {
                        Monitor.Wait(_gate);
                    }

                    _activated = false;
                }

                var idle = 0;
                var scans = Volatile.Read(ref _scans);
                while (!_stopping)
                {
                    Thread.Sleep(CoarseTickMilliseconds);
                    var current = Volatile.Read(ref _scanning);
                    if (current == 0 || Stopwatch.GetElapsedTime(Volatile.Read(ref _scanStarted)).TotalMilliseconds < TickMilliseconds)
                    {
                        // No scan, or one that started within a tick (one of a stream of short ones): not held.
                        var now = Volatile.Read(ref _scans);
                        idle = now == scans ? idle + CoarseTickMilliseconds : 0;
                        scans = now;
                        if (idle >= IdleMilliseconds && TrySleep())
                        {
                            break;
                        }

                        continue;
                    }

                    idle = 0;

                    // One scan has held the reader for a whole tick: read in its place until it ends.
                    Interlocked.Increment(ref _rescues);
                    while (Volatile.Read(ref _scanning) == current && TryRead(batch, TickMilliseconds, out var retired))
                    {
                        for (var i = 0; i < batch.Count; i++)
                        {
                            var e = batch[i];
                            batch[i] = null!; // decided events belong to whoever took them
                            if (_fastPath.Decide(e, _state, retired) is { } work)
                            {
                                ToThreadPool(work);
                            }
                        }

                        batch.Clear();
                    }
                }
            }
        }
        catch (Exception e)
        {
            _failed(e);
        }
        finally
        {
            foreach (var e in batch)
            {
                e?.Dispose();
            }
        }
    }

    private void Activate()
    {
        lock (_gate)
        {
            _activated = true;
            Monitor.Pulse(_gate);
        }
    }

    /// <summary>Goes to sleep unless a scan started meanwhile (the reader then saw the rescuer awake and did not wake it).</summary>
    private bool TrySleep()
    {
        Interlocked.Exchange(ref _rescuerAwake, 0);
        return Volatile.Read(ref _scanning) == 0 || Interlocked.CompareExchange(ref _rescuerAwake, 1, 0) != 0;
    }
}
