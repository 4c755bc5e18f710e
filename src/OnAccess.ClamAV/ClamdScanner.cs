using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
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
/// has real cancellation (the session is dropped); endpoints fail over in order. Scans run in parallel: there is no
/// global lock.
/// </summary>
public sealed partial class ClamdScanner : IScanner, IScannerReadiness, ISignatureGeneration, IHealthCheck, IAsyncDisposable
{
    /// <summary>How much of a file one INSTREAM chunk carries.</summary>
    internal const int ChunkSize = 64 * 1024;
    private readonly ClamdScannerOptions _options;
    private readonly ClamdEndpoint[] _endpoints;
    private readonly ClamdTrust _trust;
    private readonly ILogger _logger;
    private int _preferred;
    private long _generation;
    private long _nextVersionCheck;
    private int _versionCheckRunning;
    private string? _lastVersion;

    /// <summary>Creates the scanner; nothing connects until the first scan or <see cref="PingAsync"/>.</summary>
    /// <param name="options">The endpoints and limits.</param>
    /// <param name="logger">Where refused endpoints and TCP endpoints any user could take are reported.</param>
    /// <exception cref="ArgumentException">No endpoint, or one that is neither <c>unix:</c> nor <c>tcp://</c>.</exception>
    public ClamdScanner(ClamdScannerOptions options, ILogger<ClamdScanner>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("No clamd endpoint: set Endpoints (unix:/path or tcp://host:port) or use FromClamdConf.", nameof(options));
        }

        _options = options;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _endpoints = [.. options.Endpoints.Select(ClamdEndpoint.Parse)];
        _trust = new ClamdTrust(options.TrustedUsers);
        foreach (var endpoint in _endpoints.Where(e => e.IsLocalTcpAnyoneCouldTake))
        {
            LogTcpAnyoneCouldTake(_logger, endpoint.Text);
        }
    }

    /// <summary>
    /// Changes when clamd's VERSION changes (its second field is the signature database version), checked in the
    /// background at most every 10 seconds, so cached verdicts are dropped after clamd loads new signatures.
    /// </summary>
    public long Generation
    {
        get
        {
            var now = Environment.TickCount64;
            if (now >= Interlocked.Read(ref _nextVersionCheck) && Interlocked.Exchange(ref _versionCheckRunning, 1) == 0)
            {
                Interlocked.Exchange(ref _nextVersionCheck, now + (long)VersionCheckInterval.TotalMilliseconds);
                _ = RefreshGenerationAsync();
            }

            return Interlocked.Read(ref _generation);
        }
    }

    /// <summary>How often, at most, <see cref="Generation"/> asks clamd for its VERSION (a test seam; 10 seconds).</summary>
    internal TimeSpan VersionCheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The VERSION the last background check saw, or <see langword="null"/> before one has answered (a test seam).</summary>
    internal string? LastVersion => Volatile.Read(ref _lastVersion);

    /// <summary>The endpoints, in failover order.</summary>
    public IReadOnlyList<string> Endpoints => [.. _endpoints.Select(e => e.Text)];

    /// <summary>The most sessions that were open at once (for diagnostics).</summary>
    internal int PeakOpenSessions => _endpoints.Max(e => e.PeakOpen);

    /// <inheritdoc />
    public async ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var size = RandomAccess.GetLength(request.File);
        ScanResult? last = null;
        var start = Volatile.Read(ref _preferred);
        for (var i = 0; i < _endpoints.Length; i++)
        {
            var index = (start + i) % _endpoints.Length;
            var endpoint = _endpoints[index];
            var stream = _options.Mode == ClamdScanMode.Stream || !endpoint.IsUnix;
            if (stream && size > _options.StreamMaxLength)
            {
                return ScanResult.Skipped($"the file ({size} bytes) is over clamd's StreamMaxLength ({_options.StreamMaxLength} bytes)");
            }

            var (result, failover) = await ScanOnAsync(endpoint, request, stream, cancellationToken).ConfigureAwait(false);
            if (!failover)
            {
                Volatile.Write(ref _preferred, index);
                return result;
            }

            last = result;
        }

        return last!;
    }

    /// <summary>Sends PING to every endpoint.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>For each endpoint, whether it answered PONG.</returns>
    public async Task<IReadOnlyDictionary<string, bool>> PingAsync(CancellationToken cancellationToken = default)
    {
        var result = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var (endpoint, failure) in await PingEachAsync(cancellationToken).ConfigureAwait(false))
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
        var pings = await PingEachAsync(cancellationToken).ConfigureAwait(false);
        var data = pings.ToDictionary(p => "clamd " + p.Endpoint.Text, p => (object)(p.Failure ?? "up"), StringComparer.Ordinal);
        var down = pings.Where(p => p.Failure is not null).Select(p => p.Failure!).ToList();
        if (down.Count == 0)
        {
            return HealthCheckResult.Healthy($"clamd answers at {string.Join(", ", pings.Select(p => p.Endpoint.Text))}", data);
        }

        return down.Count == pings.Count
            ? new HealthCheckResult(context?.Registration?.FailureStatus ?? HealthStatus.Unhealthy, $"no clamd endpoint answers, so nothing can be scanned: {string.Join("; ", down)}", data: data)
            : HealthCheckResult.Degraded($"{down.Count} of {pings.Count} clamd endpoints down (the others scan): {string.Join("; ", down)}", data: data);
    }

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
                return await SimpleCommandAsync(endpoint, "VERSION", cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException)
            {
                last = e;
            }
        }

        throw new IOException("No clamd endpoint answered VERSION.", last);
    }

    private async Task RefreshGenerationAsync()
    {
        try
        {
            using var cts = new CancellationTokenSource(_options.ConnectTimeout);
            var version = await GetVersionAsync(cts.Token).ConfigureAwait(false);
            if (_lastVersion is not null && version != _lastVersion)
            {
                Interlocked.Increment(ref _generation);
            }

            Volatile.Write(ref _lastVersion, version);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or TimeoutException)
        {
            // clamd unreachable: keep the generation; scans report their own errors.
        }
        finally
        {
            Volatile.Write(ref _versionCheckRunning, 0);
        }
    }

    /// <summary>Closes every idle session.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisposeAsync()
    {
        foreach (var endpoint in _endpoints)
        {
            endpoint.Clear();
        }

        return ValueTask.CompletedTask;
    }

    private async Task<(ScanResult Result, bool Failover)> ScanOnAsync(ClamdEndpoint endpoint, ScanRequest request, bool stream, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 2; attempt++)
        {
            ClamdSession session;
            try
            {
                session = await endpoint.RentAsync(_options.ConnectTimeout, socket => Verify(endpoint, socket), fresh: attempt > 0, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (UntrustedClamdException e)
            {
                return (ScanResult.Error($"refused: {e.Message}; nothing was sent to it"), true);
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException or OperationCanceledException)
            {
                return (ScanResult.Error($"refused: cannot connect to clamd at {endpoint.Text} ({e.Message})"), true);
            }

            var reused = session.Used;
            try
            {
                var (reply, grew) = stream
                    ? await session.InstreamAsync(request.File, Math.Max(request.Size, 0), cancellationToken).ConfigureAwait(false)
                    : (await session.FildesAsync(request.File, cancellationToken).ConfigureAwait(false), false);
                endpoint.Return(session, _options.MaxIdleSessions);
                return (grew ? ScanResult.Skipped($"the file grew past the {request.Size} bytes it had when it was opened while it was streamed: what was added was not scanned") : Interpret(reply), false);
            }
            catch (OperationCanceledException)
            {
                session.Dispose();
                throw;
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

                return (ScanResult.Error($"protocol: the connection to clamd at {endpoint.Text} failed ({e.Message})"), true);
            }
        }

        return (ScanResult.Error($"protocol: clamd at {endpoint.Text} closed every session"), true);
    }

    /// <summary>A unix endpoint proves it is clamd before it is given anything (see <see cref="ClamdTrust"/>).</summary>
    private void Verify(ClamdEndpoint endpoint, Socket socket)
    {
        if (endpoint.SocketPath is not { } path)
        {
            return;
        }

        if (_trust.CheckPeer(socket, path) is { } reason)
        {
            if (endpoint.TryReportRefusal())
            {
                LogRefused(_logger, endpoint.Text, Text.DisplayText.Escape(reason)!);
            }

            throw new UntrustedClamdException($"clamd at {endpoint.Text} is not trusted: {reason}");
        }
    }

    [LoggerMessage(EventId = 401, Level = LogLevel.Error, Message = "Refused clamd endpoint {Endpoint}: {Reason}. Nothing was sent to it; scans fail over or follow OnAccessDenyOnError")]
    private static partial void LogRefused(ILogger logger, string endpoint, string reason);

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "clamd endpoint {Endpoint} is a local TCP port any user may bind while clamd is not listening, and would then be sent the content of every scanned file; prefer a unix socket (LocalSocket), whose listener is checked")]
    private static partial void LogTcpAnyoneCouldTake(ILogger logger, string endpoint);

    /// <summary>"fd[10]: OK", "stream: Eicar-Test-Signature FOUND", "...: Access denied. ERROR", "INSTREAM size limit exceeded. ERROR".</summary>
    internal static ScanResult Interpret(string reply)
    {
        if (reply.EndsWith(" OK", StringComparison.Ordinal))
        {
            return ScanResult.Clean;
        }

        if (reply.EndsWith(" FOUND", StringComparison.Ordinal))
        {
            var colon = reply.IndexOf(": ", StringComparison.Ordinal);
            var name = colon < 0 ? reply[..^6] : reply[(colon + 2)..^6];
            return ScanResult.Infected(name);
        }

        if (reply.Contains("size limit exceeded", StringComparison.OrdinalIgnoreCase))
        {
            return ScanResult.Skipped($"too large: clamd says '{reply}'");
        }

        return reply.EndsWith(" ERROR", StringComparison.Ordinal)
            ? ScanResult.Error($"clamd error: {reply}")
            : ScanResult.Error($"protocol: unexpected reply '{reply}'");
    }

    /// <summary>
    /// Waits until an endpoint answers PING (as long as <see cref="ClamdScannerOptions.StartupWait"/>, trying every
    /// quarter second), so the monitor never starts with a clamd it cannot reach: without it every scan would be an
    /// error, and every open would follow <c>OnAccessDenyOnError</c> (allowed, by default) without a word.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when one endpoint answers.</returns>
    /// <exception cref="IOException">No endpoint answered in time; the message names each one and why.</exception>
    public async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        var until = Stopwatch.GetTimestamp() + (long)(_options.StartupWait.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var pending = _endpoints.Select(e => PingOneAsync(e, cancellationToken)).ToList();
            var failures = new List<string>();
            while (pending.Count > 0)
            {
                var done = await Task.WhenAny(pending).ConfigureAwait(false);
                pending.Remove(done);
                if (await done.ConfigureAwait(false) is not { } failure)
                {
                    return; // the first endpoint that answers will do; the others' pings end on their own
                }

                failures.Add(failure);
            }

            if (Stopwatch.GetTimestamp() >= until)
            {
                var waited = _options.StartupWait > TimeSpan.Zero ? $" within {_options.StartupWait.TotalSeconds:0.#} s" : string.Empty;
                throw new IOException($"No clamd endpoint answered{waited}, so nothing could be scanned: {string.Join("; ", failures)}. Start clamd or correct the endpoint; to wait for a clamd that is starting, set StartupWait (ConsoleMonitor --wait SECONDS).");
            }

            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>PING to every endpoint at once, each within <see cref="ClamdScannerOptions.ConnectTimeout"/>: null for PONG, else why not.</summary>
    private async Task<List<(ClamdEndpoint Endpoint, string? Failure)>> PingEachAsync(CancellationToken cancellationToken)
    {
        var pings = _endpoints.Select(async endpoint => (endpoint, await PingOneAsync(endpoint, cancellationToken).ConfigureAwait(false)));
        return [.. await Task.WhenAll(pings).ConfigureAwait(false)];
    }

    /// <summary>PING within <see cref="ClamdScannerOptions.ConnectTimeout"/>: null for PONG, else why not (naming the endpoint).</summary>
    private async Task<string?> PingOneAsync(ClamdEndpoint endpoint, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(_options.ConnectTimeout);
        try
        {
            var reply = await SimpleCommandAsync(endpoint, "PING", bounded.Token).ConfigureAwait(false);
            return reply == "PONG" ? null : $"{endpoint.Text} answered '{Text.DisplayText.Escape(reply)}' to PING";
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException)
        {
            return $"{endpoint.Text}: no answer to PING within {_options.ConnectTimeout.TotalSeconds:0.#} s";
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException)
        {
            return $"{endpoint.Text}: {e.Message}";
        }
    }

    private async Task<string> SimpleCommandAsync(ClamdEndpoint endpoint, string command, CancellationToken cancellationToken)
    {
        using var socket = await endpoint.ConnectAsync(_options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        Verify(endpoint, socket);
        await socket.SendAsync(Encoding.ASCII.GetBytes("z" + command + "\0"), cancellationToken).ConfigureAwait(false);
        return await ClamdSession.ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false);
    }

}

/// <summary>A clamd endpoint that failed to prove it is clamd.</summary>
internal sealed class UntrustedClamdException(string message) : IOException(message);
