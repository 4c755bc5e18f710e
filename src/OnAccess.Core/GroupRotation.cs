using Microsoft.Extensions.Logging;
using OnAccess.Fanotify;
using OnAccess.Inotify;

namespace OnAccess;

/// <summary>
/// Which fanotify group is read and decided now: starts a group with its <see cref="EventLoop"/>, replaces one that
/// failed at once, and regroups when the scanner's signature generation changes. A new group is built beside the old
/// one and given every mark before the old one is retired (its new events are allowed: the new group holds them too)
/// and closed, so no access goes unseen meanwhile.
/// </summary>
internal sealed class GroupRotation : IDisposable
{
    private readonly MarkSet _marks;
    private readonly FastPath _fastPath;
    private readonly ScanDispatcher _dispatcher;
    private readonly CleanVerdicts _verdicts;
    private readonly DecisionReporter _reporter;
    private readonly ISignatureGeneration? _generations;
    private readonly TimeSpan _drainBound;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private Task _watching = Task.CompletedTask;
    private int _replacing;
    private volatile bool _stopped;

    /// <param name="marks">The owner of the marks, whose current group this rotates.</param>
    /// <param name="fastPath">Decides each event read.</param>
    /// <param name="dispatcher">Runs the scans the fast path admits.</param>
    /// <param name="verdicts">Cleared when the signatures change.</param>
    /// <param name="reporter">Counts regroupings.</param>
    /// <param name="generations">The scanner's signature generation, when it has one.</param>
    /// <param name="drainBound">How long a retired group waits for its admitted accesses before it closes.</param>
    /// <param name="logger">Logging.</param>
    public GroupRotation(MarkSet marks, FastPath fastPath, ScanDispatcher dispatcher, CleanVerdicts verdicts, DecisionReporter reporter, ISignatureGeneration? generations, TimeSpan drainBound, ILogger logger)
    {
        _marks = marks;
        _fastPath = fastPath;
        _dispatcher = dispatcher;
        _verdicts = verdicts;
        _reporter = reporter;
        _generations = generations;
        _drainBound = drainBound;
        _logger = logger;
        fastPath.GroupFailed = reason => _ = ReplaceAsync(reason);
        dispatcher.AfterScan = CheckGeneration;
    }

    /// <summary>The directory tracker, when there is one: it hands every directory over again to a new group.</summary>
    public DirectoryTree? Tree { get; set; }

    /// <summary>The signature generation the scanner reports now (0 without one).</summary>
    public long Generation => _generations?.Generation ?? 0;

    /// <summary>A new group (with the filesystem marks) and its reader, reading from now on.</summary>
    public GroupState Start(long generation)
    {
        var state = _marks.CreateGroup(generation);
        state.Loop = new EventLoop(state, _fastPath, _dispatcher, ex =>
        {
            Log.EventLoopFailed(_logger, ex);
            _ = ReplaceAsync("reading it failed: " + ex.Message);
        });
        state.Loop.Start();
        return state;
    }

    /// <summary>Looks at the scanner's generation once a second (and after each scan, see <see cref="CheckGeneration"/>).</summary>
    public void WatchGenerations()
    {
        if (_generations is not null)
        {
            _watching = Task.Run(WatchAsync, CancellationToken.None);
        }
    }

    /// <summary>Regroups when the scanner's signatures changed since the current group started.</summary>
    public void CheckGeneration()
    {
        if (_generations is { } source && _marks.Current is { } current && source.Generation != current.Generation)
        {
            _ = RegroupAsync(source.Generation);
        }
    }

    /// <summary>A group that failed is replaced at once: the new one gets every mark before the old one closes.</summary>
    public async Task ReplaceAsync(string reason)
    {
        if (Interlocked.Exchange(ref _replacing, 1) != 0)
        {
            return; // one replacement at a time; it covers every failure reported meanwhile
        }

        try
        {
            _reporter.GroupRestarted(reason);
            await RegroupAsync(_marks.Current?.Generation ?? 0, force: true).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _replacing, 0);
        }
    }

    /// <summary>
    /// Closes the current group (the kernel allows whatever it holds) and waits until its events are no longer read;
    /// no group is started after this.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            _stopped = true;
            var current = _marks.Current;
            current?.Group.Dispose();
            await _stopping.CancelAsync().ConfigureAwait(false);
            if (current is not null)
            {
                await current.Consumer.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            await _watching.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Hands over to another engine whose groups hold every open this one should still see: the current group is
    /// retired (its new events are allowed at once), the accesses it admitted are decided (bounded, as in a regroup),
    /// and then it closes; no group is started after this.
    /// </summary>
    public async Task HandOverAsync()
    {
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            _stopped = true;
            await _stopping.CancelAsync().ConfigureAwait(false);
            if (_marks.Current is { } current)
            {
                await RetireAsync(current).ConfigureAwait(false);
            }

            await _watching.ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        _stopping.Dispose();
        _gate.Dispose();
    }

    /// <summary>
    /// A new group takes over: built beside the old one, given every mark (the tracker hands every directory over
    /// again, after switching to the new group on its own thread, so nothing created meanwhile is missed), and only
    /// then is the old one retired and closed. For new signatures, every cached verdict is dropped first.
    /// </summary>
    private async Task RegroupAsync(long generation, bool force = false)
    {
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            var old = _marks.Current;
            if (old is null || (old.Generation == generation && !force) || _stopped)
            {
                return;
            }

            if (old.Generation != generation)
            {
                _verdicts.Clear();
                _reporter.CacheReset();
            }

            var next = Start(generation);
            try
            {
                if (Tree is { } tree)
                {
                    await tree.ReprotectAsync(() => _marks.Use(next)).ConfigureAwait(false);
                }
                else
                {
                    _marks.MarkRoots(next);
                    _marks.Use(next);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or OperationCanceledException)
            {
                Log.EventLoopFailed(_logger, e);
            }

            await RetireAsync(old).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Retires a group whose opens another group holds too (every mark of the successor is in place): what the kernel
    /// queued for it before is read first (and decided as usual); then events read by later reads are allowed at once;
    /// it waits (bounded) for what it admitted, and closes.
    /// </summary>
    private async Task RetireAsync(GroupState old)
    {
        if (old.Loop is { } loop && !await loop.ReadQueuedAsync(_drainBound).ConfigureAwait(false))
        {
            Log.QueuedAtRetirement(_logger);
        }

        old.Retired = true;
        var until = Environment.TickCount64 + (long)_drainBound.TotalMilliseconds;
        while (Volatile.Read(ref old.Pending) > 0 && Environment.TickCount64 < until)
        {
            await Task.Delay(5, CancellationToken.None).ConfigureAwait(false);
        }

        old.Group.Dispose();
        await old.Consumer.ConfigureAwait(false);
    }

    private async Task WatchAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                CheckGeneration();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
