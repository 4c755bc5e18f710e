using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace OnAccess.ClamAV;

/// <summary>
/// The endpoints as one scanning capacity. Each scan goes to the endpoint in the balance with the fewest scans in
/// flight (among equals a unix one first, then in turn); an endpoint that fails
/// <see cref="ClamdScannerOptions.EjectAfterFailures"/> times in a row leaves the balance and is probed with PING every
/// <see cref="ClamdScannerOptions.ProbeInterval"/> until it answers; each endpoint's signature version (VERSION) is
/// tracked, and the generation changes whenever the versions of the endpoints that may answer the next scan do.
/// </summary>
internal sealed partial class ClamdFarm : IDisposable
{
    /// <summary>The meter's name (its instruments are tagged with <c>endpoint</c>).</summary>
    public const string MeterName = "OnAccess.ClamAV";

    private readonly ClamdEndpoint[] _endpoints;
    private readonly ClamdScannerOptions _options;
    private readonly ILogger _logger;
    private readonly Func<ClamdEndpoint, string, TimeSpan, CancellationToken, Task<string?>> _ask;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private Task? _probing;
    private int _turn;
    private long _generation;
    private long _nextVersionCheck;
    private int _versionCheckRunning;
    private string? _versions;
    private string? _mixedReported;
    private int _disposed;

    /// <param name="endpoints">The endpoints, in the order they were given.</param>
    /// <param name="options">The balancing and health settings.</param>
    /// <param name="logger">Where ejections, readmissions and mixed versions are reported.</param>
    /// <param name="ask">Sends a command to one endpoint within a timeout: its reply, or null when none came.</param>
    /// <param name="meterFactory">Where the meter comes from (null: a meter of its own).</param>
    public ClamdFarm(ClamdEndpoint[] endpoints, ClamdScannerOptions options, ILogger logger, Func<ClamdEndpoint, string, TimeSpan, CancellationToken, Task<string?>> ask, IMeterFactory? meterFactory)
    {
        _endpoints = endpoints;
        _options = options;
        _logger = logger;
        _ask = ask;
        var version = typeof(ClamdFarm).Assembly.GetName().Version?.ToString();
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(new MeterOptions(MeterName) { Version = version }) ?? new Meter(MeterName, version);
        _meter.CreateObservableCounter("onaccess.clamd.scans", () => Each(e => e.Scans), "{scan}", "Scans each clamd endpoint answered");
        _meter.CreateObservableCounter("onaccess.clamd.failures", () => Each(e => e.Failures), "{attempt}", "Scan attempts that failed on each endpoint (and were tried on another)");
        _meter.CreateObservableCounter("onaccess.clamd.ejections", () => Each(e => e.Ejections), "{ejection}", "Times each endpoint was taken out of the balance");
        _meter.CreateObservableUpDownCounter("onaccess.clamd.in_flight", () => Each(e => (long)e.InFlight), "{scan}", "Scans sent to each endpoint and not yet answered");
        _meter.CreateObservableGauge("onaccess.clamd.up", () => Each(e => e.IsEjected ? 0L : 1L), description: "1 while the endpoint is in the balance, 0 while it is ejected and probed");
    }

    /// <summary>How often, at most, <see cref="Generation"/> asks the endpoints for their VERSION.</summary>
    public TimeSpan VersionCheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The version of the first endpoint that has answered VERSION, or null.</summary>
    public string? LastVersion => _endpoints.Select(e => e.Version).FirstOrDefault(v => v is not null);

    /// <summary>
    /// Changes when the set of signature versions of the endpoints in the balance changes (one loads new signatures,
    /// one with other signatures comes back), checked in the background at most every <see cref="VersionCheckInterval"/>
    /// and before an ejected endpoint is readmitted.
    /// </summary>
    public long Generation
    {
        get
        {
            var now = Environment.TickCount64;
            if (now >= Interlocked.Read(ref _nextVersionCheck) && Interlocked.Exchange(ref _versionCheckRunning, 1) == 0)
            {
                Interlocked.Exchange(ref _nextVersionCheck, now + (long)VersionCheckInterval.TotalMilliseconds);
                _ = RefreshVersionsAsync();
            }

            return Interlocked.Read(ref _generation);
        }
    }

    /// <summary>
    /// Where the next attempt goes: the endpoint not yet tried by this scan with the fewest scans in flight, among
    /// those in the balance (a unix endpoint first among equals, otherwise in turn); only when every one in the balance
    /// was tried, an ejected one (it may be back before its probe says so). -1 when every endpoint was tried.
    /// </summary>
    public int Pick(ulong tried)
    {
        var n = _endpoints.Length;
        var start = (int)((uint)Interlocked.Increment(ref _turn) % (uint)n);
        for (var pass = 0; pass < 2; pass++)
        {
            var best = -1;
            for (var k = 0; k < n; k++)
            {
                var i = (start + k) % n;
                var candidate = _endpoints[i];
                if ((tried & (1UL << i)) != 0 || candidate.IsEjected != (pass == 1))
                {
                    continue;
                }

                if (best < 0 || candidate.InFlight < _endpoints[best].InFlight || (candidate.InFlight == _endpoints[best].InFlight && candidate.IsUnix && !_endpoints[best].IsUnix))
                {
                    best = i;
                }
            }

            if (best >= 0)
            {
                return best;
            }
        }

        return -1;
    }

    /// <summary>Whether an endpoint this scan has not tried is left (in the balance or not).</summary>
    public bool HasUntried(ulong tried) => tried != (_endpoints.Length == 64 ? ulong.MaxValue : (1UL << _endpoints.Length) - 1);

    /// <summary>Counts a failed attempt; after enough in a row the endpoint leaves the balance and is probed.</summary>
    public void Failed(ClamdEndpoint endpoint, string reason)
    {
        if (!endpoint.RecordFailure(reason, _options.EjectAfterFailures))
        {
            return;
        }

        LogEjected(_logger, endpoint.Text, _options.EjectAfterFailures, Text.DisplayText.Escape(reason)!, _options.ProbeInterval.TotalSeconds);
        NoteVersions(); // it no longer answers: its version no longer counts
        lock (_gate)
        {
            if (_probing is null && !_stop.IsCancellationRequested)
            {
                _probing = Task.Run(ProbeAsync);
            }
        }
    }

    /// <summary>Each endpoint's state now.</summary>
    public IReadOnlyList<ClamdEndpointStatus> Status() =>
        [.. _endpoints.Select(e => new ClamdEndpointStatus(e.Text, !e.IsEjected, e.InFlight, e.Scans, e.Failures, e.Ejections, e.Version, e.LastFailure))];

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stop.Cancel(); // never disposed: a version check still running may read its token
        Task? probing;
        lock (_gate)
        {
            probing = _probing;
        }

        try
        {
            probing?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // A probe that failed has nothing left to do.
        }

        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    /// <summary>This farm's meter (a test seam).</summary>
    internal Meter Meter => _meter;

    /// <summary>PING to every ejected endpoint each interval; one that answers is asked its VERSION and readmitted.</summary>
    private async Task ProbeAsync()
    {
        using var timer = new PeriodicTimer(_options.ProbeInterval);
        var ended = false;
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                var ejected = _endpoints.Where(e => e.IsEjected).ToList();
                if (ejected.Count == 0)
                {
                    lock (_gate)
                    {
                        // An ejection after this check starts a new prober: it finds _probing null.
                        if (!_endpoints.Any(e => e.IsEjected))
                        {
                            _probing = null;
                            ended = true;
                            return;
                        }
                    }

                    continue;
                }

                await Task.WhenAll(ejected.Select(ProbeOneAsync)).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Disposed.
        }
        finally
        {
            if (!ended)
            {
                lock (_gate)
                {
                    _probing = null; // however it ended, the next ejection starts a prober again
                }
            }
        }
    }

    private async Task ProbeOneAsync(ClamdEndpoint endpoint)
    {
        var timeout = _options.ConnectTimeout < _options.ProbeInterval ? _options.ConnectTimeout : _options.ProbeInterval;
        if (await _ask(endpoint, "PING", timeout, _stop.Token).ConfigureAwait(false) != "PONG")
        {
            return;
        }

        // Its version first: a clamd that comes back with other signatures changes the generation before it scans. One
        // that does not say which signatures it has stays out until it does.
        if (await _ask(endpoint, "VERSION", timeout, _stop.Token).ConfigureAwait(false) is not { } version)
        {
            return;
        }

        endpoint.Version = version;
        if (endpoint.Readmit())
        {
            NoteVersions();
            LogReadmitted(_logger, endpoint.Text, endpoint.Version ?? "unknown");
        }
    }

    private async Task RefreshVersionsAsync()
    {
        try
        {
            var asked = _endpoints.Where(e => !e.IsEjected).Select(async e =>
            {
                if (await _ask(e, "VERSION", _options.ConnectTimeout, _stop.Token).ConfigureAwait(false) is { } version)
                {
                    e.Version = version;
                }
            });
            await Task.WhenAll(asked).ConfigureAwait(false);
            NoteVersions();
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
        finally
        {
            Volatile.Write(ref _versionCheckRunning, 0);
        }
    }

    /// <summary>The generation changes when the versions the balance may answer with change (not at the first look).</summary>
    private void NoteVersions()
    {
        lock (_gate)
        {
            var known = _endpoints.Where(e => !e.IsEjected && e.Version is not null).Select(e => e.Version!).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            if (known.Count == 0)
            {
                return;
            }

            var versions = string.Join(" | ", known);
            if (_versions == versions)
            {
                return;
            }

            if (_versions is not null)
            {
                Interlocked.Increment(ref _generation);
            }

            _versions = versions;
            if (known.Count > 1 && _mixedReported != versions)
            {
                _mixedReported = versions;
                var each = string.Join("; ", _endpoints.Where(e => !e.IsEjected && e.Version is not null).Select(e => $"{e.Text}: {e.Version}"));
                LogMixedVersions(_logger, Text.DisplayText.Escape(each)!);
            }
        }
    }

    private IEnumerable<Measurement<long>> Each(Func<ClamdEndpoint, long> value)
    {
        foreach (var endpoint in _endpoints)
        {
            yield return new Measurement<long>(value(endpoint), new KeyValuePair<string, object?>("endpoint", endpoint.Text));
        }
    }

    [LoggerMessage(EventId = 403, Level = LogLevel.Warning, Message = "clamd endpoint {Endpoint} taken out of the balance after {Failures} failures in a row (last: {Reason}); scans go to the others, and it is probed with PING every {Interval} s")]
    private static partial void LogEjected(ILogger logger, string endpoint, int failures, string reason, double interval);

    [LoggerMessage(EventId = 404, Level = LogLevel.Information, Message = "clamd endpoint {Endpoint} answered its probe and is back in the balance (VERSION {Version})")]
    private static partial void LogReadmitted(ILogger logger, string endpoint, string version);

    [LoggerMessage(EventId = 405, Level = LogLevel.Warning, Message = "clamd endpoints in the balance run different signatures ({Versions}): a file's verdict depends on which one scans it. Cached verdicts are dropped whenever this set changes")]
    private static partial void LogMixedVersions(ILogger logger, string versions);
}
