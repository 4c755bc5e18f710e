using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnAccess.Config;
using OnAccess.Fanotify;
using OnAccess.Inotify;
using OnAccess.Text;

namespace OnAccess;

/// <summary>
/// The on-access engine: the lifecycle that composes its parts. The <see cref="MarkSet"/> owns the fanotify group's
/// marks (kept on every directory a <see cref="DirectoryTree"/> hands over, through descriptors); the
/// <see cref="GroupRotation"/> decides which group is read, each by an <see cref="EventLoop"/>; the
/// <see cref="FastPath"/> decides what needs no scan on the thread that read it; the <see cref="ScanDispatcher"/> runs
/// scans within the open's deadline; the <see cref="CleanVerdicts"/> remember clean verdicts while a lease proves
/// them true; the <see cref="DecisionReporter"/> counts, logs and tells observers; <see cref="ExtraScans"/> scans
/// what the tracker saw written.
/// </summary>
/// <remarks>
/// Ownership of a permission event: the thread that read it owns it until it is answered there or admitted for a scan;
/// then the dispatcher owns it, and whoever decides it first (scan, deadline, full queue, shutdown) answers it.
/// Shutdown closes the group first, so the kernel allows whatever is still held.
/// </remarks>
public sealed class OnAccessMonitor : IOnAccessMonitor, IAsyncDisposable
{
    private readonly OnAccessOptions _options;
    private readonly ClamdConf? _source;
    private readonly IScanner _scanner;
    private readonly OnAccessEngineOptions _engine;
    private readonly IOnAccessObserver[] _observers;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ISignatureGeneration? _generations;
    private readonly IMeterFactory? _meterFactory;
    private readonly OnAccessPlan? _resolved;
    private DecisionReporter? _reporter;
    private CleanVerdicts? _verdicts;
    private ScanDispatcher? _dispatcher;
    private MarkSet? _marks;
    private GroupRotation? _groups;
    private DirectoryTree? _tree;
    private Task _treeNotices = Task.CompletedTask;
    private readonly MonitorHealth _health = new();
    private int _state; // 0 new, 1 started, 2 stopped
    private volatile bool _running; // started (every mark in place) and not stopping

    /// <summary>Creates a monitor. Nothing happens until <see cref="StartAsync"/>.</summary>
    /// <param name="options">The on-access directives.</param>
    /// <param name="scanner">The scanner.</param>
    /// <param name="engine">Engine settings beyond clamd.conf.</param>
    /// <param name="observers">Who receives every decision.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="source">The clamd.conf the options came from, so diagnostics can name its lines.</param>
    /// <param name="meterFactory">Where the "OnAccess" meter comes from (the host's, so its listeners see it); without
    /// one the monitor makes and owns its meter.</param>
    public OnAccessMonitor(OnAccessOptions options, IScanner scanner, OnAccessEngineOptions? engine = null, IEnumerable<IOnAccessObserver>? observers = null, ILoggerFactory? loggerFactory = null, ClamdConf? source = null, IMeterFactory? meterFactory = null)
        : this(options, scanner, engine, observers, loggerFactory, source, meterFactory, plan: null)
    {
    }

    /// <summary>A monitor whose plan was resolved already (by the host's options validation): it is not resolved again.</summary>
    internal OnAccessMonitor(OnAccessOptions options, IScanner scanner, OnAccessEngineOptions? engine, IEnumerable<IOnAccessObserver>? observers, ILoggerFactory? loggerFactory, ClamdConf? source, IMeterFactory? meterFactory, OnAccessPlan? plan)
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
        _meterFactory = meterFactory;
        _resolved = plan;
    }

    /// <inheritdoc />
    public OnAccessPlan? Plan { get; private set; }

    /// <summary>
    /// The most one read of the group takes: 4 KiB, so at most 170 events (and their pidfds) are open at once beyond
    /// the queue, the scans and the kernel cache, however many opens an attacker makes at once. A read returns
    /// whatever is there, so this costs nothing until more than that waits.
    /// </summary>
    internal const int ReadBufferSize = FanotifyGroupOptions.MinReadBufferSize;

    /// <summary>The name of the meter whose instruments the monitor publishes (docs/operations.md lists them).</summary>
    internal const string MeterName = "OnAccess";

    /// <summary>How long <see cref="StopAsync"/> waits for scans still running once their tokens are cancelled.</summary>
    internal static readonly TimeSpan StopBound = TimeSpan.FromSeconds(1);

    /// <summary>The group whose events are decided now (tests).</summary>
    internal FanotifyGroup? CurrentGroup => _marks?.Current?.Group;

    /// <summary>The directory tracker (tests).</summary>
    internal DirectoryTree? Tree => _tree;

    /// <summary>How often the event loop's rescuer read in place of a scan that held the reader (tests, diagnostics).</summary>
    internal long Rescues => _marks?.Current?.Loop?.Rescues ?? 0;

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
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
        var plan = _resolved ?? OnAccessPlan.Resolve(_options, _source);
        Plan = plan;
        LogDiagnostics(plan);
        plan.ThrowIfInvalid();
        if (!plan.Enabled)
        {
            Log.Disabled(_logger);
            _running = true;
            return;
        }

        if (_scanner is IScannerReadiness readiness)
        {
            await readiness.WaitUntilReadyAsync(cancellationToken).ConfigureAwait(false); // before any open is held
        }

        var policy = AccessPolicy.Create(plan, _engine.QueueFullDecision, _logger);
        var mask = MarkSet.MaskFor(plan, _engine, _logger);
        var version = typeof(OnAccessMonitor).Assembly.GetName().Version?.ToString();
        var meter = _meterFactory?.Create(new MeterOptions(MeterName) { Version = version }) ?? new Meter(MeterName, version);
        _reporter = new DecisionReporter(_observers, _logger, _engine.ObserverQueueCapacity, plan.DenyOnError, meter, ownsMeter: _meterFactory is null);
        _verdicts = new CleanVerdicts(_engine.CacheCapacity, _engine.KernelCache ? _engine.KernelCacheCapacity : 0, mask & (FanotifyEvents.OpenPermission | FanotifyEvents.OpenExecPermission | FanotifyEvents.AccessPermission), _logger);
        _dispatcher = new ScanDispatcher(_scanner, plan, _engine.QueueCapacity, policy, _verdicts, _reporter, () => _generations?.Generation ?? 0);
        var fastPath = new FastPath(policy, _verdicts, _dispatcher, _reporter);
        var groupOptions = new FanotifyGroupOptions
        {
            Class = plan.Prevention ? FanotifyClass.Content : FanotifyClass.Notification,
            ReportPidFd = FanotifyCapabilities.Current.PidFd && (policy.UsesUserId || _reporter.WantsUser),
            ReadBufferSize = ReadBufferSize,
        };
        _marks = new MarkSet(plan, groupOptions, mask, _loggerFactory, new ExtraScans(plan, _dispatcher, _reporter, _logger).Submit);
        _groups = new GroupRotation(_marks, fastPath, _dispatcher, _verdicts, _reporter, _generations, plan.ScanTimeout + TimeSpan.FromSeconds(1), _logger);
        try
        {
            _marks.ChooseWholeFilesystems();
            var group = _groups.Start(_groups.Generation);
            _marks.Use(group);
            if (plan.Mode == OnAccessMode.IncludePaths && plan.DynamicDirectoryDetermination)
            {
                _tree = new DirectoryTree(
                    new DirectoryTreeOptions
                    {
                        Roots = [.. plan.Roots.Select(r => new DirectoryTreeRoot(r.Path, r.Recursive))],
                        ExcludePaths = [.. plan.ExcludePaths],
                        ReportFiles = plan.ExtraScanning,
                        Handler = _marks,
                    },
                    _loggerFactory.CreateLogger<DirectoryTree>());
                _groups.Tree = _tree;
                _tree.Start(); // every directory is marked through its own descriptor before this returns
            }
            else
            {
                _marks.MarkRoots(group);
            }

            cancellationToken.ThrowIfCancellationRequested();
        }
        catch
        {
            _marks.Current?.Group.Dispose();
            _tree?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            _verdicts.Dispose();
            throw;
        }

        _reporter.ObserveGauges(() => _dispatcher.QueueDepth, () => _dispatcher.InFlight, () => _dispatcher.Hung, () => _tree?.UnprotectedCount ?? 0);
        _reporter.Start();
        _groups.WatchGenerations();
        if (_tree is not null)
        {
            _treeNotices = Task.Run(ConsumeTreeAsync, CancellationToken.None);
        }

        _running = true;
        var (mode, marked) = (plan.Mode.ToString(), MarkedDirectories);
        Log.Started(_logger, mode, plan.Prevention, plan.DynamicDirectoryDetermination, marked);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Bounded: the group closes first (the kernel allows every access still held), then queued accesses are released
    /// and scans still running (their tokens cancelled) get at most <see cref="StopBound"/> to end before they are
    /// abandoned (logged).
    /// </remarks>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _state, 2) != 1)
        {
            return;
        }

        _running = false;

        try
        {
            if (_groups is not null)
            {
                await _groups.StopAsync(cancellationToken).ConfigureAwait(false);
            }

            if (_tree is not null)
            {
                await _tree.DisposeAsync().ConfigureAwait(false);
            }

            if (_dispatcher is not null)
            {
                var abandoned = await _dispatcher.StopAsync(StopBound).ConfigureAwait(false);
                if (abandoned > 0)
                {
                    Log.ScansAbandoned(_logger, abandoned);
                }
            }

            await _treeNotices.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The host's shutdown timeout: nothing is held any more (the group is closed).
        }
        finally
        {
            _verdicts?.Dispose();
            if (_reporter is not null)
            {
                await _reporter.DisposeAsync().ConfigureAwait(false);
            }
        }

        Log.Stopped(_logger);
    }

    /// <inheritdoc />
    public OnAccessStatistics GetStatistics()
    {
        var statistics = new OnAccessStatistics
        {
            MarkedDirectories = MarkedDirectories,
            QueueDepth = _dispatcher?.QueueDepth ?? 0,
            ScansInFlight = _dispatcher?.InFlight ?? 0,
            HungScans = _dispatcher?.Hung ?? 0,
            UnprotectedDirectories = _tree?.UnprotectedCount ?? 0,
            ProtectionFailures = _tree?.WatchFailureCount ?? 0,
            KernelCachedFiles = _verdicts?.KernelCached ?? 0,
        };
        return _reporter?.Fill(statistics) ?? statistics;
    }

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(CancellationToken cancellationToken = default) => _health.CheckAsync(HealthFacts(), cancellationToken);

    /// <inheritdoc />
    public Task<bool> IsRespondingAsync(CancellationToken cancellationToken = default) => MonitorHealth.IsRespondingAsync(HealthFacts(), cancellationToken);

    /// <summary>Stops the monitor.</summary>
    /// <returns>A task that completes when stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _dispatcher?.Dispose();
        _groups?.Dispose();
    }

    private MonitorHealth.Facts HealthFacts() =>
        new(_running, Plan?.Enabled ?? false, _marks?.Current?.Loop, GetStatistics(), _engine.QueueCapacity, _scanner as IHealthCheck);

    /// <summary>Directories protected now: tracked ones (each marked, or on a whole filesystem's mark), or the roots.</summary>
    private long MarkedDirectories => _tree?.DirectoryCount ?? _marks?.MarkedRoots ?? 0;

    private void LogDiagnostics(OnAccessPlan plan)
    {
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
    }

    /// <summary>The tracker's notices: overflows are counted; a directory that left the tree but could not be found
    /// again to unmark it (a filesystem without file handles) starts a new group, which marks only what is tracked.</summary>
    private async Task ConsumeTreeAsync()
    {
        await foreach (var change in _tree!.Events.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            switch (change.Kind)
            {
                case DirectoryTreeEventKind.Overflowed:
                    _reporter!.Overflowed();
                    break;
                case DirectoryTreeEventKind.RemovalUncertain:
                    _ = _groups!.ReplaceAsync("a directory left the tree on a filesystem without file handles: " + DisplayText.Escape(change.Path));
                    break;
            }
        }
    }
}
