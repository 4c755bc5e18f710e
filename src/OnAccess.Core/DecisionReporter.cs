using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.Extensions.Logging;
using OnAccess.Fanotify;
using OnAccess.Text;

namespace OnAccess;

/// <summary>
/// Where decisions go once they are made: the counters (each counted once, and the Meter's instruments read the same
/// counts), observers (in order, on a thread of their own, <see cref="ObserverQueue{T}"/>, off every path that holds
/// an access), and logs (names escaped: a file name cannot forge a line or drive a terminal). Nothing here runs a log sink or an observer on the thread
/// that made the decision.
/// </summary>
internal sealed class DecisionReporter : IAsyncDisposable
{
    private static readonly int Decisions = Enum.GetValues<AccessDecision>().Length;
    private static readonly int Reasons = Enum.GetValues<DecisionReason>().Length;

    private readonly IOnAccessObserver[] _observers;
    private readonly ILogger _logger;
    private readonly ObserverQueue<OnAccessEvent> _observed;
    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Histogram<double> _scanDuration;
    private readonly long[] _byDecision = new long[Decisions * Reasons];
    private volatile bool _denyOnError;
    private long _events, _scans, _infected, _errors, _timeouts, _late, _hungTotal, _overflows, _kernelDenied, _observerDrops, _cacheResets, _groupRestarts, _extraScanFailures, _closesCoalesced;

    /// <summary>A reporter whose meter comes from <paramref name="meterFactory"/> (versioned), or is its own without one.</summary>
    public static DecisionReporter Create(IEnumerable<IOnAccessObserver> observers, ILogger logger, int observerQueueCapacity, bool denyOnError, IMeterFactory? meterFactory, string meterName)
    {
        var version = typeof(DecisionReporter).Assembly.GetName().Version?.ToString();
        var meter = meterFactory?.Create(new MeterOptions(meterName) { Version = version }) ?? new Meter(meterName, version);
        return new DecisionReporter(observers, logger, observerQueueCapacity, denyOnError, meter, ownsMeter: meterFactory is null);
    }

    /// <param name="observers">Who is told every decision.</param>
    /// <param name="logger">Where decisions and notices are logged.</param>
    /// <param name="observerQueueCapacity">How many decisions may wait for the observers.</param>
    /// <param name="denyOnError">OnAccessDenyOnError, for the log's wording.</param>
    /// <param name="meter">Where the instruments go.</param>
    /// <param name="ownsMeter">Whether disposing the reporter disposes the meter (one from an <see cref="IMeterFactory"/> is the factory's).</param>
    public DecisionReporter(IEnumerable<IOnAccessObserver> observers, ILogger logger, int observerQueueCapacity, bool denyOnError, Meter meter, bool ownsMeter)
    {
        _observers = [.. observers];
        _logger = logger;
        _denyOnError = denyOnError;
        _observed = new ObserverQueue<OnAccessEvent>(observerQueueCapacity, Deliver, "OnAccess reports", Delivered);
        _meter = meter;
        _ownsMeter = ownsMeter;
        _meter.CreateObservableCounter("onaccess.events", () => Interlocked.Read(ref _events), description: "Kernel events received");
        _meter.CreateObservableCounter("onaccess.scans", () => Interlocked.Read(ref _scans), description: "Scans run, retries included");
        _meter.CreateObservableCounter("onaccess.overflows", () => Interlocked.Read(ref _overflows), description: "Kernel queue overflows");
        _meter.CreateObservableCounter("onaccess.timeouts", () => Interlocked.Read(ref _timeouts), description: "Accesses answered by their deadline");
        _meter.CreateObservableCounter("onaccess.decisions", ObserveDecisions, description: "Decisions, by decision and reason");
        _scanDuration = _meter.CreateHistogram<double>("onaccess.scan.duration", unit: "ms", description: "Scan duration");
    }

    /// <summary>Whether anyone will see the accessing user: an observer, or a decision log that is on.</summary>
    public bool WantsUser => _observers.Length > 0 || _logger.IsEnabled(LogLevel.Warning);

    public Meter Meter => _meter;

    /// <summary>OnAccessDenyOnError, for the log's wording (a reload may change it).</summary>
    public bool DenyOnError
    {
        set => _denyOnError = value;
    }

    /// <summary>Publishes the gauges of the parts that own them (queue depth, scans running and hung, directories unprotected).</summary>
    public void ObserveGauges(Func<long> queueDepth, Func<long> inFlight, Func<long> hung, Func<long> unprotected)
    {
        _meter.CreateObservableGauge("onaccess.queue.depth", queueDepth, description: "Events waiting for a scan");
        _meter.CreateObservableGauge("onaccess.scans.in_flight", inFlight, description: "Scans running");
        _meter.CreateObservableGauge("onaccess.scans.hung", hung, description: "Scans running a whole timeout past their deadline");
        _meter.CreateObservableGauge("onaccess.directories.unprotected", unprotected, description: "Directories (with their subtrees) that could not be watched or protected, being retried");
    }

    public void Start() => _observed.Start();

    public void EventRead() => Interlocked.Increment(ref _events);

    public void ScanStarted() => Interlocked.Increment(ref _scans);

    public void ScanEnded(TimeSpan duration) => _scanDuration.Record(duration.TotalMilliseconds);

    public void LateVerdict() => Interlocked.Increment(ref _late);

    public void CacheReset() => Interlocked.Increment(ref _cacheResets);

    public void ExtraScanFailed() => Interlocked.Increment(ref _extraScanFailures);

    public void Overflowed() => Interlocked.Increment(ref _overflows);

    /// <summary>A close not scanned: a scan of the same file after an earlier close was waiting still.</summary>
    public void CloseCoalesced() => Interlocked.Increment(ref _closesCoalesced);

    /// <summary>A replacement group was started because the current one failed.</summary>
    public void GroupRestarted(string reason)
    {
        Interlocked.Increment(ref _groupRestarts);
        OffThePath(logger => Log.GroupRestarted(logger, reason));
    }

    /// <summary>An overflow, or an event the kernel could not deliver (it denied that access).</summary>
    public void KernelNotice(FanotifyEvent e)
    {
        if (e.IsQueueOverflow)
        {
            Interlocked.Increment(ref _overflows);
            OffThePath(static logger => Log.FanotifyOverflow(logger));
            return;
        }

        var count = Interlocked.Increment(ref _kernelDenied);
        var errno = e.ReadError!.Value;
        if (long.IsPow2(count))
        {
            OffThePath(logger => Log.KernelDenied(logger, errno, Interop.ErrorInfo.FromErrno(errno).Message, count));
        }
    }

    /// <summary>A scan is still running a whole timeout after its deadline: it holds its slot (once per scan).</summary>
    public void ScanHung(WorkItem item)
    {
        Interlocked.Increment(ref _hungTotal);
        var path = DisplayText.Escape(item.RawPath ?? RawPathOf(item.Event) ?? []);
        OffThePath(logger => Log.ScanHung(logger, path, item.ProcessId));
    }

    /// <summary>After the answer: counts the decision and hands it to observers and logs (when anyone would see it).</summary>
    public void Finish(WorkItem item, ScanVerdict? verdict, AccessDecision decision, DecisionReason reason, string? detail, string? threat = null)
    {
        var latency = Stopwatch.GetElapsedTime(item.Arrived);
        Interlocked.Increment(ref _byDecision[((int)decision * Reasons) + (int)reason]);
        if (verdict == ScanVerdict.Infected)
        {
            Interlocked.Increment(ref _infected);
        }
        else if (verdict == ScanVerdict.Error)
        {
            Interlocked.Increment(ref _errors);
        }

        if (reason == DecisionReason.Timeout)
        {
            Interlocked.Increment(ref _timeouts);
        }

        if (!IsReported(verdict, reason))
        {
            return; // nobody would see it: no observer, and its log level is off
        }

        var raw = item.RawPath ?? RawPathOf(item.Event); // the item is not released before its decision is reported
        var observed = new OnAccessEvent(raw is null ? null : Encoding.UTF8.GetString(raw), item.ProcessId, item.UserId, item.Kind, verdict, threat, decision, reason, latency, detail)
        {
            RawPath = raw,
        };
        if (!_observed.TryAdd(observed))
        {
            var drops = Interlocked.Increment(ref _observerDrops);
            if (long.IsPow2(drops))
            {
                OffThePath(logger => Log.ObserverQueueFull(logger, drops));
            }
        }
    }

    private static byte[]? RawPathOf(FanotifyEvent? e)
    {
        try
        {
            return e?.GetRawPath();
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>The counters this reporter owns, on top of <paramref name="statistics"/>.</summary>
    public OnAccessStatistics Fill(OnAccessStatistics statistics) => statistics with
    {
        Events = Interlocked.Read(ref _events),
        Scans = Interlocked.Read(ref _scans),
        Allowed = Sum(AccessDecision.Allow),
        Denied = Sum(AccessDecision.Deny),
        Infected = Interlocked.Read(ref _infected),
        Errors = Interlocked.Read(ref _errors),
        Skipped = SumReasons(DecisionReason.ExcludedUser, DecisionReason.ExcludedPath, DecisionReason.TooLarge, DecisionReason.NotRegularFile),
        CacheHits = SumReasons(DecisionReason.Cached),
        CacheResets = Interlocked.Read(ref _cacheResets),
        QueueFull = SumReasons(DecisionReason.QueueFull),
        Unscanned = Interlocked.Read(ref _byDecision[((int)AccessDecision.None * Reasons) + (int)DecisionReason.QueueFull]),
        Overflows = Interlocked.Read(ref _overflows),
        KernelDenied = Interlocked.Read(ref _kernelDenied),
        Timeouts = Interlocked.Read(ref _timeouts),
        LateVerdicts = Interlocked.Read(ref _late),
        GroupRestarts = Interlocked.Read(ref _groupRestarts),
        ExtraScanFailures = Interlocked.Read(ref _extraScanFailures),
        ClosesCoalesced = Interlocked.Read(ref _closesCoalesced),
    };

    public async ValueTask DisposeAsync()
    {
        await _observed.StopAsync().ConfigureAwait(false);
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private long Sum(AccessDecision decision)
    {
        long sum = 0;
        for (var r = 0; r < Reasons; r++)
        {
            sum += Interlocked.Read(ref _byDecision[((int)decision * Reasons) + r]);
        }

        return sum;
    }

    private long SumReasons(params DecisionReason[] reasons)
    {
        long sum = 0;
        for (var d = 0; d < Decisions; d++)
        {
            foreach (var r in reasons)
            {
                sum += Interlocked.Read(ref _byDecision[(d * Reasons) + (int)r]);
            }
        }

        return sum;
    }

    private IEnumerable<Measurement<long>> ObserveDecisions()
    {
        for (var d = 0; d < Decisions; d++)
        {
            for (var r = 0; r < Reasons; r++)
            {
                var count = Interlocked.Read(ref _byDecision[(d * Reasons) + r]);
                if (count > 0)
                {
                    yield return new Measurement<long>(count, new KeyValuePair<string, object?>("decision", ((AccessDecision)d).ToString()), new KeyValuePair<string, object?>("reason", ((DecisionReason)r).ToString()));
                }
            }
        }
    }

    private void Deliver(OnAccessEvent e)
    {
        var path = e.RawPath is { } raw ? DisplayText.Escape(raw) : null;
        if (e.Verdict == ScanVerdict.Infected)
        {
            Log.Infected(_logger, DisplayText.Escape(e.ThreatName), path, e.ProcessId, e.UserId, e.Decision);
        }
        else if (e.Reason is DecisionReason.ScanError or DecisionReason.Timeout or DecisionReason.Unscannable)
        {
            Log.ScanFailed(_logger, path, e.Reason, e.Decision, _denyOnError, DisplayText.Escape(e.Detail));
        }
        else if (_logger.IsEnabled(LogLevel.Debug))
        {
            Log.Decision(_logger, e.Decision, path, e.ProcessId, e.Reason, e.Verdict, (long)e.Latency.TotalMicroseconds);
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

    private void Delivered()
    {
        foreach (var observer in _observers)
        {
            try
            {
                observer.OnEventsDelivered();
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
        || _logger.IsEnabled(verdict == ScanVerdict.Infected || reason is DecisionReason.ScanError or DecisionReason.Timeout or DecisionReason.Unscannable ? LogLevel.Warning : LogLevel.Debug);

    /// <summary>Logs from the paths that hold accesses run on the thread pool: a thread that answers never runs a log sink.</summary>
    private void OffThePath(Action<ILogger> log) =>
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Log(state.Logger), (Log: log, Logger: _logger), preferLocal: false);
}
