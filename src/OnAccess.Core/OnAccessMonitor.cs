using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using OnAccess.Config;
using OnAccess.Fanotify;
using OnAccess.Inotify;
using OnAccess.Paths;

namespace OnAccess;

/// <summary>
/// The on-access engine. It turns the plan into fanotify marks (and, with DDD, keeps them on every directory a
/// <see cref="DirectoryTree"/> reports) and every event into a decision:
/// own process → allow at once; excluded user or path, not a regular file, over the size limit → allow, counted;
/// otherwise a bounded queue feeds <c>MaxThreads</c> concurrent scans, each with a deadline, retried
/// <c>RetryAttempts</c> times; infected → deny (prevention) or report; error or timeout → deny with
/// <c>OnAccessDenyOnError</c>, else allow. Every decision then goes to observers, logs and metrics, off the path.
/// </summary>
/// <remarks>
/// Ownership of a permission event: the event loop owns it until it is answered there or written to the scan queue;
/// then the worker that takes it owns it. Every path that drops one (queue full, shutdown, exception) answers it
/// first. Shutdown closes the group first, so the kernel allows whatever is still held.
/// </remarks>
public sealed class OnAccessMonitor : IOnAccessMonitor, IAsyncDisposable
{
    /// <summary>
    /// Files up to this size are scanned on the event loop's reader (see <see cref="EventLoop{TWork}"/>): their scan
    /// costs less than a hand-off. Larger ones go to the thread pool, where a long scan holds no reader.
    /// </summary>
    private const long InlineScanMaxSize = 128 * 1024;

    private readonly OnAccessOptions _options;
    private readonly ClamdConf? _source;
    private readonly IScanner _scanner;
    private readonly OnAccessEngineOptions _engine;
    private readonly IOnAccessObserver[] _observers;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly int _ownPid = Environment.ProcessId;
    private readonly CancellationTokenSource _stopping = new();
    private readonly HashSet<string> _marked = new(StringComparer.Ordinal);
    private readonly Lock _marksGate = new();
    private readonly Meter _meter = new("OnAccess");
    private readonly Counter<long> _eventsCounter;
    private readonly Counter<long> _scansCounter;
    private readonly Counter<long> _decisionsCounter;
    private readonly Counter<long> _overflowCounter;
    private readonly Histogram<double> _scanDuration;
    private readonly SemaphoreSlim _regroupGate = new(1, 1);
    private SemaphoreSlim _slots = new(1, 1);
    private readonly ISignatureGeneration? _generations;
    private Channel<WorkItem>? _queue;
    private Channel<OnAccessEvent>? _observed;
    private volatile GroupState? _current;
    private DirectoryTree? _tree;
    private FanotifyEvents _mask;
    private FanotifyMarkTarget _markTarget;
    private FanotifyGroupOptions? _groupOptions;
    private VerdictCache? _cache;
    private readonly List<(string Path, (uint Major, uint Minor) Device)> _wholeFilesystems = []; // one filesystem mark each
    private HashSet<uint> _excludedUids = [];
    private readonly List<Task> _tasks = [];
    private int _state; // 0 new, 1 started, 2 stopped
    private long _events, _scans, _allowed, _denied, _infected, _errors, _skipped, _queueFull, _overflows, _kernelDenied, _inFlight, _depth, _observerDrops, _cacheHits, _cacheResets;

    /// <summary>Creates a monitor. Nothing happens until <see cref="StartAsync"/>.</summary>
    /// <param name="options">The on-access directives.</param>
    /// <param name="scanner">The scanner.</param>
    /// <param name="engine">Engine settings beyond clamd.conf.</param>
    /// <param name="observers">Who receives every decision.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="source">The clamd.conf the options came from, so diagnostics can name its lines.</param>
    public OnAccessMonitor(OnAccessOptions options, IScanner scanner, OnAccessEngineOptions? engine = null, IEnumerable<IOnAccessObserver>? observers = null, ILoggerFactory? loggerFactory = null, ClamdConf? source = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(scanner);
        _options = options;
        _scanner = scanner;
        _engine = engine ?? new OnAccessEngineOptions();
        _observers = [.. observers ?? []];
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<OnAccessMonitor>();
        _source = source;
        _generations = scanner as ISignatureGeneration;
        _eventsCounter = _meter.CreateCounter<long>("onaccess.events", description: "Kernel events received");
        _scansCounter = _meter.CreateCounter<long>("onaccess.scans", description: "Scans run, retries included");
        _decisionsCounter = _meter.CreateCounter<long>("onaccess.decisions", description: "Decisions, by decision and reason");
        _overflowCounter = _meter.CreateCounter<long>("onaccess.overflows", description: "Kernel queue overflows");
        _scanDuration = _meter.CreateHistogram<double>("onaccess.scan.duration", unit: "ms", description: "Scan duration");
        _meter.CreateObservableGauge("onaccess.queue.depth", () => Interlocked.Read(ref _depth), description: "Events waiting for a scan");
        _meter.CreateObservableGauge("onaccess.scans.in_flight", () => Interlocked.Read(ref _inFlight), description: "Scans running");
    }

    /// <inheritdoc />
    public OnAccessPlan? Plan { get; private set; }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("OnAccess needs Linux: fanotify and inotify are Linux kernel interfaces.");
        }

        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            throw new InvalidOperationException("The monitor has already been started.");
        }

        cancellationToken.ThrowIfCancellationRequested();
        var plan = OnAccessPlan.Resolve(_options, _source);
        Plan = plan;
        foreach (var d in plan.Diagnostics)
        {
            var text = d.ToString();
            if (d.Severity == DiagnosticSeverity.Warning)
            {
                Log.PlanWarning(_logger, d.Code, text);
            }
            else if (d.Severity == DiagnosticSeverity.Info)
            {
                Log.PlanInfo(_logger, d.Code, text);
            }
        }

        plan.ThrowIfInvalid();
        if (!plan.Enabled)
        {
            Log.Disabled(_logger);
            return Task.CompletedTask;
        }

        _excludedUids = [.. plan.ExcludeUids];
        foreach (var name in plan.ExcludeUnames)
        {
            if (Interop.Libc.GetUserId(name) is { } uid)
            {
                _excludedUids.Add(uid);
            }
            else
            {
                Log.UnknownUser(_logger, name);
            }
        }

        _cache = _engine.CacheCapacity > 0 ? new VerdictCache(_engine.CacheCapacity) : null;
        _slots = new SemaphoreSlim(plan.MaxThreads, plan.MaxThreads);
        _queue = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(_engine.QueueCapacity) { FullMode = BoundedChannelFullMode.Wait, SingleWriter = false });
        _observed = Channel.CreateBounded<OnAccessEvent>(new BoundedChannelOptions(_engine.ObserverQueueCapacity) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
        try
        {
            StartKernel(plan, cancellationToken);
        }
        catch
        {
            _current?.Group.Dispose();
            _tree?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }

        for (var i = 0; i < plan.MaxThreads; i++)
        {
            _tasks.Add(Task.Run(WorkAsync, CancellationToken.None));
        }

        if (_generations is not null)
        {
            _tasks.Add(Task.Run(WatchGenerationAsync, CancellationToken.None));
        }

        if (_tree is not null)
        {
            _tasks.Add(Task.Run(ConsumeTreeAsync, CancellationToken.None));
        }

        _tasks.Add(Task.Run(DispatchAsync, CancellationToken.None));
        var mode = plan.Mode.ToString();
        Log.Started(_logger, mode, plan.Prevention, plan.DynamicDirectoryDetermination, _marked.Count);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _state, 2) != 1)
        {
            return;
        }

        // The group first: the kernel allows every access still held, and late answers fail harmlessly.
        await _regroupGate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        var current = _current;
        current?.Group.Dispose();
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (current is not null)
        {
            await current.Consumer.ConfigureAwait(false);
        }

        _queue?.Writer.TryComplete();
        if (_tree is not null)
        {
            await _tree.DisposeAsync().ConfigureAwait(false);
        }

        try
        {
            await Task.WhenAll(_tasks).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The host's shutdown timeout: workers still running hold no access (the group is closed).
        }

        _regroupGate.Release();
        Log.Stopped(_logger);
    }

    /// <inheritdoc />
    public OnAccessStatistics GetStatistics()
    {
        lock (_marksGate)
        {
            return new OnAccessStatistics
            {
                Events = Interlocked.Read(ref _events),
                Scans = Interlocked.Read(ref _scans),
                Allowed = Interlocked.Read(ref _allowed),
                Denied = Interlocked.Read(ref _denied),
                Infected = Interlocked.Read(ref _infected),
                Errors = Interlocked.Read(ref _errors),
                Skipped = Interlocked.Read(ref _skipped),
                CacheHits = Interlocked.Read(ref _cacheHits),
                CacheResets = Interlocked.Read(ref _cacheResets),
                QueueFull = Interlocked.Read(ref _queueFull),
                Overflows = Interlocked.Read(ref _overflows),
                KernelDenied = Interlocked.Read(ref _kernelDenied),
                MarkedDirectories = _marked.Count,
                QueueDepth = Interlocked.Read(ref _depth),
                ScansInFlight = Interlocked.Read(ref _inFlight),
            };
        }
    }

    /// <summary>How often the event loop's rescuer read in place of a scan that held the reader (tests, diagnostics).</summary>
    internal long Rescues => _current?.Loop?.Rescues ?? 0;

    /// <summary>Stops the monitor.</summary>
    /// <returns>A task that completes when stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _stopping.Dispose();
        _regroupGate.Dispose();
        _slots.Dispose();
        _meter.Dispose();
    }

    private void StartKernel(OnAccessPlan plan, CancellationToken cancellationToken)
    {
        var capabilities = FanotifyCapabilities.Current;
        _groupOptions = new FanotifyGroupOptions { Class = plan.Prevention ? FanotifyClass.Content : FanotifyClass.Notification };
        _mask = plan.Prevention ? FanotifyEvents.OpenPermission : FanotifyEvents.Open;
        if (_engine.ExecPermission)
        {
            if (capabilities.OpenExecPermission)
            {
                _mask |= plan.Prevention ? FanotifyEvents.OpenExecPermission : FanotifyEvents.OpenExec;
            }
            else
            {
                Log.NoExecPermission(_logger);
            }
        }

        if (_engine.AccessPermission)
        {
            _mask |= plan.Prevention ? FanotifyEvents.AccessPermission : FanotifyEvents.Access;
        }

        _markTarget = plan.Mode == OnAccessMode.MountPaths ? FanotifyMarkTarget.Mount : FanotifyMarkTarget.Inode;
        if (plan.Mode == OnAccessMode.IncludePaths && plan.DynamicDirectoryDetermination)
        {
            _tree = new DirectoryTree(
                new DirectoryTreeOptions
                {
                    Roots = [.. plan.Roots.Select(r => new DirectoryTreeRoot(r.Path, r.Recursive))],
                    ExcludePaths = [.. plan.ExcludePaths],
                    ReportFiles = plan.ExtraScanning,
                },
                _loggerFactory.CreateLogger<DirectoryTree>());
            _tree.Start();
            _marked.UnionWith(_tree.GetDirectories());
        }
        else
        {
            _marked.UnionWith(plan.Roots.Select(r => r.Path));
        }

        if (plan.Mode == OnAccessMode.IncludePaths && plan.DynamicDirectoryDetermination && capabilities.FilesystemMarks)
        {
            ChooseWholeFilesystems(plan);
        }

        cancellationToken.ThrowIfCancellationRequested();
        lock (_marksGate)
        {
            _current = CreateGroup(_generations?.Generation ?? 0, throwOnFailure: true);
        }
    }

    /// <summary>
    /// A recursive root that is a whole filesystem (a mount point showing its filesystem's root) with nothing excluded
    /// below it is protected by one filesystem mark instead of a mark per directory: the same files (every file of
    /// that filesystem lies below the root, by whatever path it is opened), one mark instead of thousands, and an
    /// open costs the kernel less (no parent to consult: bench/OpenLatency). Directories of other filesystems mounted
    /// below it keep their directory marks.
    /// </summary>
    private void ChooseWholeFilesystems(OnAccessPlan plan)
    {
        foreach (var root in plan.Roots)
        {
            if (root.Recursive
                && !plan.ExcludePaths.Any(x => PathPrefix.IsSameOrUnder(x, root.Path))
                && !plan.Roots.Any(other => other.Path != root.Path && PathPrefix.IsStrictlyUnder(root.Path, other.Path))
                && MountTable.IsWholeFilesystem(root.Path)
                && Interop.Libc.GetDevice(root.Path) is { } device)
            {
                _wholeFilesystems.Add((root.Path, device));
                Log.WholeFilesystem(_logger, root.Path);
            }
        }
    }

    /// <summary>A group with every mark in <see cref="_marked"/>, reading. Called under <see cref="_marksGate"/>.</summary>
    private GroupState CreateGroup(long generation, bool throwOnFailure)
    {
        var group = FanotifyGroup.Create(_groupOptions, _loggerFactory.CreateLogger<FanotifyGroup>());
        try
        {
            foreach (var whole in _wholeFilesystems.ToList())
            {
                try
                {
                    group.AddMark(whole.Path, _mask, FanotifyMarkOptions.None, FanotifyMarkTarget.Filesystem);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
                {
                    // This filesystem refuses a filesystem mark: its directories are marked one by one instead.
                    Log.WholeFilesystemRefused(_logger, whole.Path, e.Message);
                    _wholeFilesystems.Remove(whole);
                }
            }

            foreach (var path in _marked.ToList())
            {
                if (!TryMark(group, path, throwOnFailure))
                {
                    _marked.Remove(path);
                }
            }

            var state = new GroupState(group, generation);
            state.Loop = new EventLoop<WorkItem>(
                group,
                e => Dispatch(e, state),
                static item => item.Size <= InlineScanMaxSize,
                item => _ = RunAsync(item),
                ex =>
                {
                    Log.EventLoopFailed(_logger, ex);
                    group.Dispose();
                });
            state.Loop.Start();
            return state;
        }
        catch
        {
            group.Dispose();
            throw;
        }
    }

    private bool TryMark(FanotifyGroup group, string path, bool throwOnFailure)
    {
        if (_wholeFilesystems.Count > 0 && Interop.Libc.GetDevice(path) is { } device && _wholeFilesystems.Exists(w => w.Device == device))
        {
            return true; // on a filesystem whose filesystem mark already holds every open
        }

        try
        {
            group.AddMark(path, _mask, MarkOptions, _markTarget);
            return true;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException && _markTarget == FanotifyMarkTarget.Inode)
        {
            return false; // vanished since the tracker saw it: its removal is on its way
        }
        catch (Exception e) when (!throwOnFailure && e is IOException or UnauthorizedAccessException or NotSupportedException or ObjectDisposedException)
        {
            Log.MarkFailed(_logger, path, e.Message);
            return false;
        }
    }

    private FanotifyMarkOptions MarkOptions => _markTarget == FanotifyMarkTarget.Mount
        ? FanotifyMarkOptions.None
        : FanotifyMarkOptions.EventOnChild | FanotifyMarkOptions.OnlyDirectory | FanotifyMarkOptions.DontFollow;

    private void Mark(string directory)
    {
        lock (_marksGate)
        {
            if (_current is { } current && TryMark(current.Group, directory, throwOnFailure: false))
            {
                _marked.Add(directory);
            }
        }
    }

    private void Unmark(string directory)
    {
        lock (_marksGate)
        {
            if (_marked.Remove(directory) && _current is { Group.IsClosed: false } current)
            {
                try
                {
                    current.Group.RemoveMark(directory, _mask, MarkOptions);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
                {
                    // Deleted directories lose their marks with their inodes.
                }
            }
        }
    }

    /// <summary>
    /// Drops every cached verdict when the scanner's signatures change: the user-space cache is cleared and a new
    /// group, with every directory mark but no ignore marks, takes over before the old one closes, so no protected
    /// open goes unchecked in between. The old group answers what it already held, and allows what arrives after the
    /// switch (the new group holds those too), then closes.
    /// </summary>
    private async Task RegroupAsync(long generation)
    {
        await _regroupGate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            var old = _current;
            if (old is null || old.Generation == generation || _state != 1)
            {
                return;
            }

            _cache?.Clear();
            Interlocked.Increment(ref _cacheResets);
            lock (_marksGate)
            {
                _current = CreateGroup(generation, throwOnFailure: false);
                old.Retired = true;
            }

            var until = Stopwatch.GetTimestamp() + (long)((Plan!.ScanTimeout + TimeSpan.FromSeconds(1)).TotalSeconds * Stopwatch.Frequency);
            while (Volatile.Read(ref old.Pending) > 0 && Stopwatch.GetTimestamp() < until)
            {
                await Task.Delay(5, CancellationToken.None).ConfigureAwait(false);
            }

            old.Group.Dispose();
            await old.Consumer.ConfigureAwait(false);
        }
        finally
        {
            _regroupGate.Release();
        }
    }

    private async Task WatchGenerationAsync()
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

    private void CheckGeneration()
    {
        if (_generations is { } source && _current is { } current && source.Generation != current.Generation)
        {
            _ = RegroupAsync(source.Generation);
        }
    }

    /// <summary>
    /// The fast path, on the thread that read the event: decides what needs no scan, in the order of the design, and
    /// answers it at once; returns the scans that got a slot (the event loop runs them) and queues the rest. It never
    /// blocks and never runs a scanner, an observer or a log sink (decisions are reported later, elsewhere).
    /// </summary>
    private WorkItem? Dispatch(FanotifyEvent e, GroupState group)
    {
        Interlocked.Increment(ref _events);
        _eventsCounter.Add(1);
        var arrived = Stopwatch.GetTimestamp();
        if (e.IsQueueOverflow || e.ReadError is not null)
        {
            if (e.IsQueueOverflow)
            {
                Interlocked.Increment(ref _overflows);
                _overflowCounter.Add(1);
                OffThePath(static logger => Log.FanotifyOverflow(logger));
            }
            else
            {
                var count = Interlocked.Increment(ref _kernelDenied);
                var errno = e.ReadError!.Value;
                if (long.IsPow2(count))
                {
                    OffThePath(logger => Log.KernelDenied(logger, errno, Interop.ErrorInfo.FromErrno(errno).Message, count));
                }
            }

            e.Dispose();
            return null;
        }

        if (e.File is null)
        {
            e.Dispose();
            return null;
        }

        if (e.ProcessId == _ownPid || group.Retired)
        {
            // Our own opens never wait on us; a retired group's new events are held by its successor too.
            Answer(e, AccessDecision.Allow);
            e.Dispose();
            return null;
        }

        return Decide(e, Plan!, arrived, group);
    }

    private WorkItem? Decide(FanotifyEvent e, OnAccessPlan plan, long arrived, GroupState group)
    {
        var kind = KindOf(e.Events);
        uint? uid = null;

        // Exclusions need the exact effective UID (the status file). Otherwise a held process waits for us, so its
        // UID is read later, off this path; a notified one may exit at any moment, so it is read now, with one
        // statx (best effort: a process already gone is scanned, as ClamAV documents).
        if (_excludedUids.Count > 0)
        {
            uid = ProcessInfo.GetEffectiveUid(e.ProcessId);
            if (uid is { } u && _excludedUids.Contains(u))
            {
                Skip(e, kind, uid, DecisionReason.ExcludedUser, arrived, path: null);
                return null;
            }
        }
        else if (!e.IsPermissionRequest)
        {
            uid = ProcessInfo.GetOwnerUid(e.ProcessId);
        }

        string? path = null;
        if (plan.ExcludePaths.Count > 0)
        {
            path = e.GetPath();
            if (path is not null && plan.IsExcluded(path))
            {
                Skip(e, kind, uid, DecisionReason.ExcludedPath, arrived, path);
                return null;
            }
        }

        FileIdentity identity;
        try
        {
            identity = e.GetFileIdentity();
        }
        catch (IOException)
        {
            Skip(e, kind, uid, DecisionReason.NotRegularFile, arrived, path);
            return null;
        }

        if (!identity.IsRegularFile)
        {
            Skip(e, kind, uid, DecisionReason.NotRegularFile, arrived, path);
            return null;
        }

        if (plan.MaxFileSize is { } max && identity.Size > max)
        {
            Skip(e, kind, uid, DecisionReason.TooLarge, arrived, path);
            return null;
        }

        var key = VerdictKey.From(identity, group.Generation);
        if (_cache is not null && _cache.Contains(key))
        {
            Interlocked.Increment(ref _cacheHits);
            IgnoreInKernel(group, e);
            Answer(e, AccessDecision.Allow);
            Finish(new WorkItem(e, e.File!, kind, e.ProcessId, uid, identity.Size, path, arrived, null, key), ScanVerdict.Clean, e.IsPermissionRequest ? AccessDecision.Allow : AccessDecision.None, DecisionReason.Cached, null);
            return null;
        }

        var item = new WorkItem(e, e.File!, kind, e.ProcessId, uid, identity.Size, path, arrived, group, key);
        Interlocked.Increment(ref group.Pending);
        if (_slots.Wait(0))
        {
            return item; // a free scan slot: the event loop scans it on this (awake) thread or on the thread pool
        }

        Interlocked.Increment(ref _depth);
        if (!_queue!.Writer.TryWrite(item))
        {
            Interlocked.Decrement(ref _depth);
            var decision = _engine.QueueFullDecision ?? (plan.DenyOnError ? AccessDecision.Deny : AccessDecision.Allow);
            Answer(e, decision);
            var count = Interlocked.Increment(ref _queueFull);
            Finish(item, null, decision, DecisionReason.QueueFull, "the scan queue is full");
            if (long.IsPow2(count))
            {
                OffThePath(logger => Log.QueueFull(logger, decision, count));
            }
        }

        return null;
    }

    /// <summary>Kernel cache: the next opens of this unchanged file do not reach user space (any write clears it).</summary>
    private void IgnoreInKernel(GroupState group, FanotifyEvent e)
    {
        if (!_engine.KernelCache || !e.IsPermissionRequest || group.Retired)
        {
            return;
        }

        try
        {
            var options = FanotifyCapabilities.Current.EvictableMarks ? FanotifyIgnoreOptions.Evictable : FanotifyIgnoreOptions.None;
            group.Group.AddIgnoreMark(e.File!, _mask & (FanotifyEvents.OpenPermission | FanotifyEvents.OpenExecPermission | FanotifyEvents.AccessPermission), options);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException or NotSupportedException)
        {
            // The user-space cache still has it; a refused mark (for example the mark limit) only costs a lookup.
        }
    }

    private void Skip(FanotifyEvent e, AccessKind kind, uint? uid, DecisionReason reason, long arrived, string? path)
    {
        Answer(e, AccessDecision.Allow);
        Interlocked.Increment(ref _skipped);
        Finish(new WorkItem(e, e.File!, kind, e.ProcessId, uid, 0, path, arrived, null, default), null, e.IsPermissionRequest ? AccessDecision.Allow : AccessDecision.None, reason, null);
    }

    private async Task WorkAsync()
    {
        await foreach (var item in _queue!.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            Interlocked.Decrement(ref _depth);
            await _slots.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            await RunAsync(item).ConfigureAwait(false);
        }
    }

    /// <summary>Scans and answers one event in a held slot (MaxThreads slots in all), then frees the slot.</summary>
    private async Task RunAsync(WorkItem item)
    {
        try
        {
            await ProcessAsync(item).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Never leave an access held: answer by the error policy, then go on.
            var decision = Plan!.DenyOnError ? AccessDecision.Deny : AccessDecision.Allow;
            if (item.Event is { } e)
            {
                Answer(e, decision);
            }

            Finish(item, ScanVerdict.Error, decision, DecisionReason.ScanError, ex.Message);
        }
        finally
        {
            _slots.Release();
        }
    }

    private async Task ProcessAsync(WorkItem item)
    {
        var plan = Plan!;
        if (_stopping.IsCancellationRequested)
        {
            Finish(item, null, item.Event is { IsPermissionRequest: true } ? AccessDecision.Allow : AccessDecision.None, DecisionReason.Shutdown, null);
            return;
        }

        // The path and the user are looked up only if the scanner or a report reads them (procfs lookups cost more
        // than the rest of the path of an open).
        var request = item.Path is null && item.Event is { } source
            ? new ScanRequest(item.File, source.GetPath, item.Size, item.ProcessId, item.UserId, item.Kind)
            : new ScanRequest(item.File, item.Path, item.Size, item.ProcessId, item.UserId, item.Kind);
        var (result, reason) = await ScanAsync(request, plan).ConfigureAwait(false);

        var held = item.Event is { IsPermissionRequest: true };
        AccessDecision decision;
        switch (result.Verdict)
        {
            case ScanVerdict.Infected:
                Interlocked.Increment(ref _infected);
                decision = held && plan.Prevention ? AccessDecision.Deny : held ? AccessDecision.Allow : AccessDecision.None;
                break;
            case ScanVerdict.Error:
                Interlocked.Increment(ref _errors);
                decision = !held ? AccessDecision.None : plan.DenyOnError ? AccessDecision.Deny : AccessDecision.Allow;
                break;
            default:
                decision = held ? AccessDecision.Allow : AccessDecision.None;
                break;
        }

        if (result.Verdict == ScanVerdict.Clean && item.Group is { } group && group.Generation == (_generations?.Generation ?? 0))
        {
            // Only clean verdicts are remembered, and only for the signatures that produced them.
            _cache?.Add(item.Key);
            IgnoreInKernel(group, item.Event!);
        }

        if (IsReported(result.Verdict, reason))
        {
            // For the report, read while a held process still waits (one statx of /proc/PID; readlink of our fd).
            item = item with { Path = request.Path, UserId = request.UserId };
        }

        if (item.Event is { } e)
        {
            Answer(e, decision);
        }

        Finish(item, result.Verdict, decision, reason, result.Reason, result.ThreatName);
        CheckGeneration();
    }

    /// <summary>One deadline for the whole event (retries included), whatever the scanner does with its token.</summary>
    private async Task<(ScanResult Result, DecisionReason Reason)> ScanAsync(ScanRequest request, OnAccessPlan plan)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        deadline.CancelAfter(plan.ScanTimeout);
        Interlocked.Increment(ref _inFlight);

        var started = Stopwatch.GetTimestamp();
        try
        {
            string? lastError = null;
            for (var attempt = 0; attempt <= plan.RetryAttempts; attempt++)
            {
                Interlocked.Increment(ref _scans);
                _scansCounter.Add(1);
                try
                {
                    var pending = _scanner.ScanAsync(request, deadline.Token);
                    var result = pending.IsCompletedSuccessfully
                        ? pending.Result
                        : await pending.AsTask().WaitAsync(deadline.Token).ConfigureAwait(false);
                    if (result.Verdict != ScanVerdict.Error)
                    {
                        return (result, DecisionReason.Scanned);
                    }

                    lastError = result.Reason ?? "the scanner reported an error";
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                {
                    return (ScanResult.Error($"no verdict within {plan.ScanTimeout.TotalMilliseconds} ms"), _stopping.IsCancellationRequested ? DecisionReason.Shutdown : DecisionReason.Timeout);
                }
                catch (Exception ex)
                {
                    lastError = $"{ex.GetType().Name}: {ex.Message}";
                }
            }

            return (ScanResult.Error(lastError!), DecisionReason.ScanError);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            _scanDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }

    private async Task ConsumeTreeAsync()
    {
        await foreach (var change in _tree!.Events.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            switch (change.Kind)
            {
                case DirectoryTreeEventKind.DirectoryAdded:
                    Mark(change.Path);
                    break;
                case DirectoryTreeEventKind.DirectoryRemoved:
                    Unmark(change.Path);
                    break;
                case DirectoryTreeEventKind.DirectoryMoved:
                    lock (_marksGate)
                    {
                        // Marks follow inodes; only the bookkeeping moves.
                        var prefix = change.OldPath + "/";
                        var moved = _marked.Where(m => m == change.OldPath || m.StartsWith(prefix, StringComparison.Ordinal)).ToList();
                        foreach (var m in moved)
                        {
                            _marked.Remove(m);
                            _marked.Add(change.Path + m[change.OldPath!.Length..]);
                        }
                    }

                    break;
                case DirectoryTreeEventKind.FileCreated:
                    ExtraScan(change.Path, AccessKind.Created);
                    break;
                case DirectoryTreeEventKind.FileMovedIn:
                    ExtraScan(change.Path, AccessKind.MovedIn);
                    break;
                case DirectoryTreeEventKind.FileClosedWrite:
                    ExtraScan(change.Path, AccessKind.CloseWrite);
                    break;
                case DirectoryTreeEventKind.Overflowed:
                    Interlocked.Increment(ref _overflows);
                    _overflowCounter.Add(1);
                    break;
                case DirectoryTreeEventKind.RootLost or DirectoryTreeEventKind.WatchFailed or DirectoryTreeEventKind.NestedMount or DirectoryTreeEventKind.RootRestored:
                    var kindName = change.Kind.ToString();
                    Log.TreeProblem(_logger, kindName, change.Path);
                    break;
            }
        }
    }

    /// <summary>
    /// OnAccessExtraScanning: a file created, moved in or written is opened here (this process's opens are allowed
    /// at once, so this never waits on itself) and scanned; nothing is held, so the result is reported only.
    /// </summary>
    private void ExtraScan(string path, AccessKind kind)
    {
        if (!Plan!.ExtraScanning)
        {
            return;
        }

        // O_NONBLOCK: whatever the path is by now, the open cannot wait (a FIFO without a writer would hold this
        // thread, and with it the directory tracking, for good); the type is checked on the descriptor afterwards.
        var fd = Interop.Libc.Open(path, Interop.Libc.O_RDONLY | Interop.Libc.O_NONBLOCK | Interop.Libc.O_NOCTTY | Interop.Libc.O_CLOEXEC);
        if (fd < 0)
        {
            return; // gone, or not readable
        }

        var file = new SafeFileHandle(fd, ownsHandle: true);
        var identity = FileIdentity.Of(file);
        if (!identity.IsRegularFile)
        {
            file.Dispose();
            return;
        }

        if (Plan.MaxFileSize is { } max && identity.Size > max)
        {
            Finish(new WorkItem(null, file, kind, 0, null, identity.Size, path, Stopwatch.GetTimestamp(), null, default), null, AccessDecision.None, DecisionReason.TooLarge, null);
            return;
        }

        var item = new WorkItem(null, file, kind, 0, null, identity.Size, path, Stopwatch.GetTimestamp(), null, default);
        Interlocked.Increment(ref _depth);
        if (!_queue!.Writer.TryWrite(item))
        {
            Interlocked.Decrement(ref _depth);
            Interlocked.Increment(ref _queueFull);
            Finish(item, null, AccessDecision.None, DecisionReason.QueueFull, "the scan queue is full");
        }
    }

    private static void Answer(FanotifyEvent e, AccessDecision decision)
    {
        if (!e.IsPermissionRequest)
        {
            return;
        }

        try
        {
            e.Respond(decision == AccessDecision.Deny ? FanotifyResponse.Deny : FanotifyResponse.Allow);
        }
        catch (ObjectDisposedException)
        {
            // The group closed: the kernel has allowed the access.
        }
        catch (IOException)
        {
            // The kernel no longer knows the event (the opener was killed); nothing waits for it.
        }
    }

    /// <summary>After the answer: release the event, count, and hand the decision to observers.</summary>
    private void Finish(WorkItem item, ScanVerdict? verdict, AccessDecision decision, DecisionReason reason, string? detail, string? threat = null)
    {
        var latency = Stopwatch.GetElapsedTime(item.Arrived);
        if (item.Group is { } group)
        {
            Interlocked.Decrement(ref group.Pending);
        }

        var reported = IsReported(verdict, reason);
        var path = reported ? item.Path ?? item.Event?.GetPath() : null; // before the descriptor closes
        if (item.Event is { } e)
        {
            e.Dispose();
        }
        else
        {
            item.File.Dispose();
        }

        if (decision == AccessDecision.Allow)
        {
            Interlocked.Increment(ref _allowed);
        }
        else if (decision == AccessDecision.Deny)
        {
            Interlocked.Increment(ref _denied);
        }

        _decisionsCounter.Add(1, new KeyValuePair<string, object?>("decision", decision.ToString()), new KeyValuePair<string, object?>("reason", reason.ToString()));
        if (!reported)
        {
            return; // nobody would see it: no observer, and its log level is off
        }

        var observed = new OnAccessEvent(path, item.ProcessId, item.UserId, item.Kind, verdict, threat, decision, reason, latency, detail);
        if (!_observed!.Writer.TryWrite(observed))
        {
            var drops = Interlocked.Increment(ref _observerDrops);
            if (long.IsPow2(drops))
            {
                Log.ObserverQueueFull(_logger, drops);
            }
        }
    }

    private async Task DispatchAsync()
    {
        try
        {
            await foreach (var e in _observed!.Reader.ReadAllAsync(_stopping.Token).ConfigureAwait(false))
            {
                Deliver(e);
            }
        }
        catch (OperationCanceledException)
        {
            while (_observed!.Reader.TryRead(out var e))
            {
                Deliver(e);
            }
        }
    }

    private void Deliver(OnAccessEvent e)
    {
        if (e.Verdict == ScanVerdict.Infected)
        {
            Log.Infected(_logger, e.ThreatName, e.Path, e.ProcessId, e.UserId, e.Decision);
        }
        else if (e.Reason is DecisionReason.ScanError or DecisionReason.Timeout)
        {
            Log.ScanFailed(_logger, e.Path, e.Reason, e.Decision, Plan!.DenyOnError, e.Detail);
        }
        else
        {
            Log.Decision(_logger, e.Decision, e.Path, e.ProcessId, e.Reason, e.Verdict, (long)e.Latency.TotalMicroseconds);
        }

        foreach (var observer in _observers)
        {
            try
            {
                observer.OnEvent(e);
            }
            catch (Exception ex)
            {
                Log.ObserverFailed(_logger, ex);
            }
        }
    }

    /// <summary>Whether a decision reaches anyone: an observer, or a log level that is on (see <see cref="Deliver"/>).</summary>
    private bool IsReported(ScanVerdict? verdict, DecisionReason reason) =>
        _observers.Length > 0
        || _logger.IsEnabled(verdict == ScanVerdict.Infected || reason is DecisionReason.ScanError or DecisionReason.Timeout ? LogLevel.Warning : LogLevel.Debug);

    /// <summary>Logs from the fast path run on the thread pool: a thread that reads events never runs a log sink.</summary>
    private void OffThePath(Action<ILogger> log) =>
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Log(state.Logger), (Log: log, Logger: _logger), preferLocal: false);

    private static AccessKind KindOf(FanotifyEvents events) =>
        (events & (FanotifyEvents.OpenExecPermission | FanotifyEvents.OpenExec)) != 0 ? AccessKind.Exec
        : (events & (FanotifyEvents.AccessPermission | FanotifyEvents.Access)) != 0 && (events & (FanotifyEvents.Open | FanotifyEvents.OpenPermission)) == 0 ? AccessKind.Read
        : AccessKind.Open;

    private sealed record WorkItem(FanotifyEvent? Event, SafeFileHandle File, AccessKind Kind, int ProcessId, uint? UserId, long Size, string? Path, long Arrived, GroupState? Group, VerdictKey Key);

    /// <summary>One fanotify group and its reader. A new one replaces it when the signatures change.</summary>
    private sealed class GroupState(FanotifyGroup group, long generation)
    {
        public int Pending;

        public FanotifyGroup Group { get; } = group;

        public long Generation { get; } = generation;

        public volatile bool Retired;

        public EventLoop<WorkItem>? Loop { get; set; }

        /// <summary>Completes when the group's events are no longer read.</summary>
        public Task Consumer => Loop?.ReadingStopped ?? Task.CompletedTask;
    }
}
