using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnAccess.Config;
using OnAccess.Fanotify;
using OnAccess.Inotify;

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
    private readonly OnAccessEngineOptions _engineOptions;
    private readonly IOnAccessObserver[] _observers;
    private readonly IDetectionAction[] _actionList;
    private DetectionActions? _actions;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly IMeterFactory? _meterFactory;
    private readonly OnAccessPlan? _resolved;
    private readonly MonitorHealth _health = new();
    private readonly SemaphoreSlim _lifecycle = new(1, 1); // start, each reload, stop: one at a time
    private readonly CancellationTokenSource _stopping = new();
    private DecisionReporter? _reporter;
    private volatile MonitorEngine? _engine;
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
    /// <param name="actions">What is done about infected files once their accesses are answered, in order.</param>
    public OnAccessMonitor(OnAccessOptions options, IScanner scanner, OnAccessEngineOptions? engine = null, IEnumerable<IOnAccessObserver>? observers = null, ILoggerFactory? loggerFactory = null, ClamdConf? source = null, IMeterFactory? meterFactory = null, IEnumerable<IDetectionAction>? actions = null)
        : this(options, scanner, engine, observers, loggerFactory, source, meterFactory, plan: null, actions)
    {
    }

    /// <summary>A monitor whose plan was resolved already (by the host's options validation): it is not resolved again.</summary>
    internal OnAccessMonitor(OnAccessOptions options, IScanner scanner, OnAccessEngineOptions? engine, IEnumerable<IOnAccessObserver>? observers, ILoggerFactory? loggerFactory, ClamdConf? source, IMeterFactory? meterFactory, OnAccessPlan? plan, IEnumerable<IDetectionAction>? actions = null)
    {
        _actionList = [.. actions ?? []];
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(scanner);
        _options = options;
        _scanner = scanner;
        _engineOptions = engine ?? new OnAccessEngineOptions();
        _observers = [.. observers ?? []];
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<OnAccessMonitor>();
        _source = source;
        _meterFactory = meterFactory;
        _resolved = plan;
    }

    /// <inheritdoc />
    public OnAccessPlan? Plan { get; private set; }

    /// <summary>The name of the meter whose instruments the monitor publishes (docs/operations.md lists them).</summary>
    internal const string MeterName = "OnAccess";

    /// <summary>How long <see cref="StopAsync"/> waits for scans still running once their tokens are cancelled.</summary>
    internal static readonly TimeSpan StopBound = TimeSpan.FromSeconds(1);

    /// <summary>How long <see cref="StopAsync"/> gives the actions on detections already queued.</summary>
    internal static readonly TimeSpan ActionStopBound = TimeSpan.FromSeconds(5);

    /// <summary>The engine running now (tests, diagnostics).</summary>
    internal MonitorEngine? Engine => _engine;

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

        await _lifecycle.WaitAsync(cancellationToken).ConfigureAwait(false); // a stop that comes meanwhile waits for this
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Volatile.Read(ref _state) != 1)
            {
                throw new InvalidOperationException("The monitor was stopped before it started.");
            }

            var plan = _resolved ?? OnAccessPlan.Resolve(_options, _source);
            Plan = plan;
            Log.Diagnostics(_logger, plan);
            plan.ThrowIfInvalid();
            if (!plan.Enabled)
            {
                Log.Disabled(_logger);
                _running = true;
                return;
            }

            var reporter = await PrepareAsync(plan, _scanner, newScanner: true, cancellationToken).ConfigureAwait(false); // before any open is held
            _engine = await MonitorEngine.StartAsync(plan, _scanner, _engineOptions, reporter, _actions, _loggerFactory, _logger, cancellationToken).ConfigureAwait(false);
            StartReporting(reporter);
            _engine.Run();
            _running = true;
            var (mode, marked) = (plan.Mode.ToString(), _engine.MarkedDirectories);
            Log.Started(_logger, mode, plan.Prevention, plan.DynamicDirectoryDetermination, marked);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<OnAccessPlanChange>> ReloadAsync(OnAccessOptions options, ClamdConf? source = null, IScanner? scanner = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return ReloadAsync(OnAccessPlan.Resolve(options, source), scanner, cancellationToken);
    }

    /// <summary>Applies a plan resolved already (by the host's options validation).</summary>
    internal async Task<IReadOnlyList<OnAccessPlanChange>> ReloadAsync(OnAccessPlan plan, IScanner? scanner, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        await _lifecycle.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            if (!_running || Plan is not { } old)
            {
                throw new InvalidOperationException("Only a running monitor can be reloaded (it has not started, its start failed, or it is stopping).");
            }

            plan.ThrowIfInvalid();
            var current = _engine;
            var nextScanner = scanner ?? current?.Scanner ?? _scanner;
            var changes = OnAccessPlanChange.Between(old, plan, !ReferenceEquals(nextScanner, current?.Scanner ?? _scanner));
            if (changes.Count == 0)
            {
                return changes;
            }

            Log.Diagnostics(_logger, plan);
            var reporter = await PrepareAsync(plan, nextScanner, plan.Enabled && !ReferenceEquals(nextScanner, current?.Scanner), linked.Token).ConfigureAwait(false);
            var next = await MonitorEngine.StartReplacementAsync(plan, nextScanner, _engineOptions, reporter, _actions, _loggerFactory, _logger, linked.Token).ConfigureAwait(false); // every new mark in place
            reporter.DenyOnError = plan.DenyOnError;
            if (current is null)
            {
                StartReporting(reporter);
            }

            _engine = next;
            Plan = plan;
            next.Run();
            if (current is not null)
            {
                // Only now does the old engine let go: what the kernel queued for it read, retired, its admitted
                // accesses decided, then closed.
                await current.StopAndReportAsync(handOver: true, StopBound, CancellationToken.None).ConfigureAwait(false);
                current.Dispose();
            }

            Log.Reloaded(_logger, changes);
            return changes;
        }
        catch (Exception e)
        {
            // Refused, whatever the reason: the new engine cleaned up after itself, and the running one stays.
            Log.ReloadRefused(_logger, OnAccessText.Escape(e.Message)!);
            throw;
        }
        finally
        {
            _lifecycle.Release();
        }
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
        await _stopping.CancelAsync().ConfigureAwait(false); // a reload waiting for clamd gives up
        await _lifecycle.WaitAsync(CancellationToken.None).ConfigureAwait(false); // one under way finishes first
        _running = false; // a start that finished meanwhile
        try
        {
            if (_engine is { } engine)
            {
                await engine.StopAndReportAsync(handOver: false, StopBound, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The host's shutdown timeout: nothing is held any more (the group is closed).
        }
        finally
        {
            if (_actions is not null)
            {
                await _actions.StopAsync(ActionStopBound).ConfigureAwait(false); // what was queued gets a moment
            }

            if (_reporter is not null)
            {
                await _reporter.DisposeAsync().ConfigureAwait(false);
            }

            _lifecycle.Release();
        }

        Log.Stopped(_logger);
    }

    /// <inheritdoc />
    public OnAccessStatistics GetStatistics()
    {
        var statistics = MonitorEngine.Statistics(_engine, _actions);
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
        _engine?.Dispose();
        _stopping.Dispose();
    }

    /// <summary>Waits for a new scanner to be ready; makes the reporter and the actions, which outlive engines, once.</summary>
    private async Task<DecisionReporter> PrepareAsync(OnAccessPlan plan, IScanner scanner, bool newScanner, CancellationToken cancellationToken)
    {
        if (newScanner && scanner is IScannerReadiness readiness)
        {
            await readiness.WaitUntilReadyAsync(cancellationToken).ConfigureAwait(false);
        }

        _reporter ??= DecisionReporter.Create(_observers, _logger, _engineOptions.ObserverQueueCapacity, plan.DenyOnError, _meterFactory, MeterName);
        _actions ??= _actionList.Length == 0 ? null : new DetectionActions(_actionList, _observers, _engineOptions.ActionQueueCapacity, _engineOptions.ActionConcurrency, _logger);
        return _reporter;
    }

    /// <summary>The gauges read whichever engine runs now.</summary>
    private void StartReporting(DecisionReporter reporter)
    {
        reporter.ObserveGauges(() => _engine?.Dispatcher?.QueueDepth ?? 0, () => _engine?.Dispatcher?.InFlight ?? 0, () => _engine?.Dispatcher?.Hung ?? 0, () => _engine?.Tree?.UnprotectedCount ?? 0);
        reporter.Start();
    }

    private MonitorHealth.Facts HealthFacts()
    {
        var engine = _engine;
        return new(_running, Plan?.Enabled ?? false, engine?.Marks?.Current?.Loop, GetStatistics(), _engineOptions.QueueCapacity, (engine?.Scanner ?? _scanner) as IHealthCheck);
    }

}
