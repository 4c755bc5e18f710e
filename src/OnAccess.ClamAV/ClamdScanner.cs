using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace OnAccess.ClamAV;

/// <summary>
/// Scans with clamd. On a unix socket the file's descriptor is passed with SCM_RIGHTS (FILDES), so clamd reads the
/// very file that was opened and never reopens a path; on TCP (or by choice) the content is streamed (INSTREAM) from
/// the descriptor, and a descriptor is never sent over TCP. Before a unix endpoint is given anything it must prove
/// it is clamd: its process runs as root or a trusted user, and its socket lies where no other user could have put it
/// (<see cref="ClamdScannerOptions.TrustedUsers"/>). Connections are kept in IDSESSION sessions and reused; every scan
/// has real cancellation (the session is dropped). Several endpoints make a farm: each scan goes to the one with the
/// fewest scans in flight, a failed attempt is tried on another, an endpoint that keeps failing is ejected and probed
/// back in, and each one's signature version is tracked (<see cref="GetEndpointStatus"/>). Scans run in parallel: there
/// is no global lock.
/// </summary>
public sealed class ClamdScanner : IScanner, IScannerReadiness, ISignatureGeneration, IHealthCheck, IAsyncDisposable
{
    /// <summary>How much of a file one INSTREAM chunk carries.</summary>
    internal const int ChunkSize = 64 * 1024;
    private readonly ClamdScannerOptions _options;
    private readonly ClamdEndpoint[] _endpoints;
    private readonly ClamdConnector _connector;
    private readonly ClamdFarm _farm;
    private readonly ILogger _logger;

    /// <summary>Creates the scanner; nothing connects until the first scan or <see cref="PingAsync"/>.</summary>
    /// <param name="options">The endpoints, limits, balancing and health settings.</param>
    /// <param name="logger">Where refused endpoints, TCP endpoints any user could take, ejections and readmissions are reported.</param>
    /// <param name="meterFactory">Where the <c>OnAccess.ClamAV</c> meter (each endpoint's scans, failures, ejections, scans in flight, state) comes from; null: a meter of its own.</param>
    /// <exception cref="ArgumentException">No endpoint, more than 64, or one that is neither <c>unix:</c> nor <c>tcp://</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A balancing or health setting out of range.</exception>
    public ClamdScanner(ClamdScannerOptions options, ILogger<ClamdScanner>? logger = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("No clamd endpoint: set Endpoints (unix:/path or tcp://host:port) or use FromClamdConf.", nameof(options));
        }

        if (options.Endpoints.Count > 64)
        {
            throw new ArgumentException($"{options.Endpoints.Count} clamd endpoints: at most 64 are balanced.", nameof(options));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(options.EjectAfterFailures, 1, "options.EjectAfterFailures");
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.ProbeInterval, TimeSpan.Zero, "options.ProbeInterval");
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.ReplyTimeout, TimeSpan.Zero, "options.ReplyTimeout");
        _options = options;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _endpoints = [.. options.Endpoints.Select(ClamdEndpoint.Parse)];
        _connector = new ClamdConnector(options, _logger);
        _farm = new ClamdFarm(_endpoints, options, _logger, _connector.AskAsync, meterFactory);
        foreach (var endpoint in _endpoints.Where(e => e.IsLocalTcpAnyoneCouldTake))
        {
            ClamdConnector.LogTcpAnyoneCouldTake(_logger, endpoint.Text);
        }
    }

    /// <summary>
    /// Changes when the signature versions (VERSION: its second field) of the endpoints in the balance change: one
    /// loads new signatures, or one with other signatures comes back. Checked in the background at most every 10
    /// seconds, and before an ejected endpoint is readmitted, so cached verdicts are dropped before it scans.
    /// </summary>
    public long Generation => _farm.Generation;

    /// <summary>How often, at most, <see cref="Generation"/> asks clamd for its VERSION (a test seam; 10 seconds).</summary>
    internal TimeSpan VersionCheckInterval
    {
        get => _farm.VersionCheckInterval;
        set => _farm.VersionCheckInterval = value;
    }

    /// <summary>The VERSION of the first endpoint that has answered one, or <see langword="null"/> (a test seam).</summary>
    internal string? LastVersion => _farm.LastVersion;

    /// <summary>This scanner's meter (a test seam).</summary>
    internal Meter Meter => _farm.Meter;

    /// <summary>The endpoints, as given.</summary>
    public IReadOnlyList<string> Endpoints => [.. _endpoints.Select(e => e.Text)];

    /// <summary>Each endpoint's state: in the balance or ejected, scans in flight and answered, failures, version.</summary>
    /// <returns>One entry per endpoint, in the order they were given.</returns>
    public IReadOnlyList<ClamdEndpointStatus> GetEndpointStatus() => _farm.Status();

    /// <summary>The most sessions that were open at once (for diagnostics).</summary>
    internal int PeakOpenSessions => _endpoints.Max(e => e.PeakOpen);

    /// <inheritdoc />
    public async ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var size = RandomAccess.GetLength(request.File);
        ScanResult? last = null;
        ulong tried = 0;
        int index;
        List<ClamdEndpoint>? erred = null;
        while ((index = _farm.Pick(tried)) >= 0)
        {
            tried |= 1UL << index;
            var endpoint = _endpoints[index];
            var stream = _options.Mode == ClamdScanMode.Stream || !endpoint.IsUnix;
            if (stream && size > _options.StreamMaxLength)
            {
                // Another endpoint may take the descriptor (FILDES has no such limit); if none can, the file is skipped.
                last ??= ScanResult.Skipped($"the file ({size} bytes) is over clamd's StreamMaxLength ({_options.StreamMaxLength} bytes)");
                continue;
            }

            endpoint.Enter();
            var answered = false;
            try
            {
                var (result, outcome) = await ScanOnAsync(endpoint, request, stream, others: _farm.HasUntried(tried), cancellationToken).ConfigureAwait(false);
                switch (outcome)
                {
                    case Outcome.Answered:
                        answered = true;
                        foreach (var other in erred ?? [])
                        {
                            _farm.Failed(other, "it answered ERROR to a scan another endpoint answered");
                        }

                        return result;
                    case Outcome.Unreadable:
                        return result; // the file's fault, not clamd's: no other endpoint would read it either
                    case Outcome.ErrorReply:
                        // The file's fault (every endpoint says so) or this clamd's (another one answers): see above.
                        (erred ??= []).Add(endpoint);
                        break;
                    default:
                        _farm.Failed(endpoint, result.Reason ?? "failed");
                        break;
                }

                last = result;
            }
            finally
            {
                endpoint.Exit(answered);
            }
        }

        return last ?? ScanResult.Error("no clamd endpoint could be tried");
    }

    /// <summary>Sends PING to every endpoint.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>For each endpoint, whether it answered PONG.</returns>
    public async Task<IReadOnlyDictionary<string, bool>> PingAsync(CancellationToken cancellationToken = default)
    {
        var result = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var (endpoint, failure) in await _connector.PingEachAsync(_endpoints, cancellationToken).ConfigureAwait(false))
        {
            result[endpoint.Text] = failure is null;
        }

        return result;
    }

    /// <summary>
    /// Pings every endpoint at once (each bounded by <see cref="ClamdScannerOptions.ConnectTimeout"/>, so a frozen
    /// clamd that accepts and never answers counts as down): Healthy when all answer, Degraded when some do (the others
    /// are named with the reason), Unhealthy when none does (every scan would be an error).
    /// </summary>
    /// <param name="context">The registration (its failure status is used for "none answers").</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The result; its data holds each endpoint's state.</returns>
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var pings = await _connector.PingEachAsync(_endpoints, cancellationToken).ConfigureAwait(false);
        var data = pings.ToDictionary(p => "clamd " + p.Endpoint.Text, p => (object)Describe(p.Endpoint, p.Failure), StringComparer.Ordinal);
        var down = pings.Where(p => p.Failure is not null).Select(p => p.Failure!).ToList();
        if (down.Count == 0)
        {
            return HealthCheckResult.Healthy($"clamd answers at {string.Join(", ", pings.Select(p => p.Endpoint.Text))}", data);
        }

        return down.Count == pings.Count
            ? new HealthCheckResult(context?.Registration?.FailureStatus ?? HealthStatus.Unhealthy, $"no clamd endpoint answers, so nothing can be scanned: {string.Join("; ", down)}", data: data)
            : HealthCheckResult.Degraded($"{down.Count} of {pings.Count} clamd endpoints down (the others scan): {string.Join("; ", down)}", data: data);
    }

    private static string Describe(ClamdEndpoint endpoint, string? failure) =>
        (failure ?? "up")
        + (endpoint.IsEjected ? $"; ejected (last failure: {Text.DisplayText.Escape(endpoint.LastFailure)}), probed" : "; in the balance")
        + $"; {endpoint.Scans} scans, {endpoint.InFlight} in flight, {endpoint.Failures} failures, {endpoint.Ejections} ejections";

    /// <summary>
    /// clamd's VERSION (for example <c>ClamAV 1.4.6/27512/...</c>): the part after the first slash changes when the
    /// signatures do, so a verdict cache can drop what it remembered.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The version string of the first endpoint that answers.</returns>
    public async Task<string> GetVersionAsync(CancellationToken cancellationToken = default)
    {
        Exception? last = null;
        foreach (var endpoint in _endpoints)
        {
            try
            {
                return await _connector.CommandAsync(endpoint, "VERSION", cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException)
            {
                last = e;
            }
        }

        throw new IOException("No clamd endpoint answered VERSION.", last);
    }

    /// <summary>Stops probing and closes every idle session.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisposeAsync()
    {
        _farm.Dispose();
        foreach (var endpoint in _endpoints)
        {
            endpoint.Clear();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>How one attempt on one endpoint ended.</summary>
    private enum Outcome
    {
        /// <summary>A verdict (clean, infected, skipped).</summary>
        Answered,

        /// <summary>The endpoint failed (connection, trust, protocol, no reply): another one is tried.</summary>
        Failed,

        /// <summary>clamd answered ERROR: another one is tried; this one is blamed only if another one answers.</summary>
        ErrorReply,

        /// <summary>The file could not be read while it was streamed: no endpoint is to blame or tried.</summary>
        Unreadable,
    }

    /// <summary>One attempt on one endpoint (a dead pooled session is retried once on a fresh one).</summary>
    /// <param name="endpoint">Where.</param>
    /// <param name="request">What.</param>
    /// <param name="stream">INSTREAM (else FILDES).</param>
    /// <param name="others">Whether another endpoint could take the scan if this one does not answer in time.</param>
    /// <param name="cancellationToken">The open's deadline.</param>
    private async Task<(ScanResult Result, Outcome Outcome)> ScanOnAsync(ClamdEndpoint endpoint, ScanRequest request, bool stream, bool others, CancellationToken cancellationToken)
    {
        // With another endpoint to go to, one that does not even accept within ReplyTimeout is not waited for.
        var connectTimeout = others && _options.ReplyTimeout < _options.ConnectTimeout ? _options.ReplyTimeout : _options.ConnectTimeout;
        for (var attempt = 0; attempt < 2; attempt++)
        {
            ClamdSession session;
            var connecting = Stopwatch.GetTimestamp();
            try
            {
                session = await endpoint.RentAsync(connectTimeout, socket => _connector.Verify(endpoint, socket), fresh: attempt > 0, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                if (Stopwatch.GetElapsedTime(connecting) >= _options.ReplyTimeout)
                {
                    _farm.Failed(endpoint, $"no connection to clamd at {endpoint.Text} before the open's deadline");
                }

                throw;
            }
            catch (UntrustedClamdException e)
            {
                return (ScanResult.Error($"refused: {e.Message}; nothing was sent to it"), Outcome.Failed);
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException or OperationCanceledException or InvalidDataException)
            {
                return (ScanResult.Error($"refused: cannot connect to clamd at {endpoint.Text} ({e.Message})"), Outcome.Failed);
            }

            var reused = session.Used;
            using var scan = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var work = stream
                ? session.InstreamAsync(request.File, Math.Max(request.Size, 0), scan.Token)
                : FildesAsync(session, request.File, scan.Token);
            try
            {
                var (reply, grew) = await ReplyOrFrozenAsync(endpoint, work, scan, others, cancellationToken).ConfigureAwait(false);
                endpoint.Return(session, _options.MaxIdleSessions);
                if (grew)
                {
                    return (ScanResult.Skipped($"the file grew past the {request.Size} bytes it had when it was opened while it was streamed: what was added was not scanned"), Outcome.Answered);
                }

                var result = ClamdSession.Interpret(reply);
                return (result, result.Verdict == ScanVerdict.Error ? Outcome.ErrorReply : Outcome.Answered);
            }
            catch (OperationCanceledException)
            {
                await EndAsync(work, scan).ConfigureAwait(false);
                session.Dispose();
                throw;
            }
            catch (FrozenClamdException e)
            {
                session.Dispose();
                return (ScanResult.Error(e.Message), Outcome.Failed);
            }
            catch (UnreadableFileException e)
            {
                session.Dispose(); // clamd waits for the rest of a stream that will not come
                return (ScanResult.Error($"unscannable: {e.Message}"), Outcome.Unreadable);
            }
            catch (Exception e) when (e is SocketException or IOException or InvalidDataException)
            {
                session.Dispose();
                if (reused && attempt == 0)
                {
                    // A pooled session clamd had closed (IdleTimeout, or a clamd that restarted, which took every idle
                    // session with it): drop the others too and try once on a fresh one.
                    endpoint.Clear();
                    continue;
                }

                return (ScanResult.Error($"protocol: the connection to clamd at {endpoint.Text} failed ({e.Message})"), Outcome.Failed);
            }
        }

        return (ScanResult.Error($"protocol: clamd at {endpoint.Text} closed every session"), Outcome.Failed);
    }

    private static async Task<(string Reply, bool Grew)> FildesAsync(ClamdSession session, Microsoft.Win32.SafeHandles.SafeFileHandle file, CancellationToken cancellationToken) =>
        (await session.FildesAsync(file, cancellationToken).ConfigureAwait(false), false);

    /// <summary>
    /// The reply, waited for as long as the endpoint shows it is alive: after each <see cref="ClamdScannerOptions.ReplyTimeout"/>
    /// without one, it is asked PING on a connection of its own; no PONG within that time either, and the attempt is
    /// abandoned (<see cref="FrozenClamdException"/>) so the scan can go to another endpoint.
    /// </summary>
    /// <remarks>With no other endpoint to go to, nothing is gained by giving up: the reply is waited for (the open's deadline bounds it).</remarks>
    private async Task<(string Reply, bool Grew)> ReplyOrFrozenAsync(ClamdEndpoint endpoint, Task<(string Reply, bool Grew)> work, CancellationTokenSource attempt, bool others, CancellationToken cancellationToken)
    {
        if (!others)
        {
            return await work.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        while (true)
        {
            try
            {
                return await work.WaitAsync(_options.ReplyTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                if (work.IsCompleted)
                {
                    continue; // it came as the time ran out: take it
                }

                if (await _connector.AskAsync(endpoint, "PING", _options.ReplyTimeout, cancellationToken).ConfigureAwait(false) == "PONG")
                {
                    continue; // busy, not gone: the open's deadline bounds the wait
                }

                await EndAsync(work, attempt).ConfigureAwait(false);
                throw new FrozenClamdException($"protocol: clamd at {endpoint.Text} sent no reply within {_options.ReplyTimeout.TotalMilliseconds:0} ms and no answer to PING either (frozen or gone)");
            }
        }
    }

    /// <summary>Cancels an attempt and waits for it to let go of its session (it is cancellable at every step).</summary>
    private static async Task EndAsync(Task work, CancellationTokenSource attempt)
    {
        await attempt.CancelAsync().ConfigureAwait(false);
        try
        {
            await work.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or InvalidDataException or ObjectDisposedException or UnreadableFileException)
        {
            // The attempt is over; how it ended no longer matters.
        }
    }

    /// <summary>
    /// Waits until an endpoint answers PING (as long as <see cref="ClamdScannerOptions.StartupWait"/>, trying every
    /// quarter second), so the monitor never starts with a clamd it cannot reach: without it every scan would be an
    /// error, and every open would follow <c>OnAccessDenyOnError</c> (allowed, by default) without a word.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when one endpoint answers.</returns>
    /// <exception cref="IOException">No endpoint answered in time; the message names each one and why.</exception>
    public Task WaitUntilReadyAsync(CancellationToken cancellationToken) => _connector.WaitForAnyAsync(_endpoints, cancellationToken);
}
