using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace OnAccess.ClamAV;

/// <summary>
/// Connections to endpoints that proved they are clamd (<see cref="ClamdTrust"/>: nothing is sent to one that has not),
/// and the one-off commands asked on them: PING for readiness, health and probes, VERSION for the signatures.
/// </summary>
internal sealed partial class ClamdConnector(ClamdScannerOptions options, ILogger logger)
{
    private readonly ClamdTrust _trust = new(options.TrustedUsers);
    private readonly ClamdScannerOptions _options = options;
    private readonly ILogger _logger = logger;

    /// <summary>A unix endpoint, or a TCP one on this machine's loopback, proves it is clamd before it is given anything (see <see cref="ClamdTrust"/>).</summary>
    public void Verify(ClamdEndpoint endpoint, Socket socket)
    {
        var reason = endpoint.SocketPath is { } path ? _trust.CheckPeer(socket, path)
            : socket.RemoteEndPoint is System.Net.IPEndPoint reached && System.Net.IPAddress.IsLoopback(reached.Address.IsIPv4MappedToIPv6 ? reached.Address.MapToIPv4() : reached.Address) ? _trust.CheckLoopback(reached)
            : null; // another machine's clamd: the administrator's choice of address is all there is to check
        if (reason is not null)
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

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "clamd endpoint {Endpoint} is a local TCP port any user may bind while clamd is not listening; its listener's owner is checked before anything is sent (refused: log 401), but prefer a unix socket (LocalSocket)")]
    public static partial void LogTcpAnyoneCouldTake(ILogger logger, string endpoint);

    /// <summary>A command on a connection of its own within <paramref name="timeout"/>: the reply, or null when none came.</summary>
    public async Task<string?> AskAsync(ClamdEndpoint endpoint, string command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(timeout);
        try
        {
            return await CommandAsync(endpoint, command, bounded.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return null; // refused, timed out, closed, malformed (an endpoint's answer is never an exception of ours)
        }
    }

    /// <summary>Until one endpoint answers PING, within <see cref="ClamdScannerOptions.StartupWait"/> (see <see cref="ClamdScanner.WaitUntilReadyAsync"/>).</summary>
    public async Task WaitForAnyAsync(IReadOnlyList<ClamdEndpoint> endpoints, CancellationToken cancellationToken)
    {
        var until = Stopwatch.GetTimestamp() + (long)(_options.StartupWait.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var pending = endpoints.Select(e => PingOneAsync(e, cancellationToken)).ToList();
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
    public async Task<List<(ClamdEndpoint Endpoint, string? Failure)>> PingEachAsync(IEnumerable<ClamdEndpoint> endpoints, CancellationToken cancellationToken)
    {
        var pings = endpoints.Select(async endpoint => (endpoint, await PingOneAsync(endpoint, cancellationToken).ConfigureAwait(false)));
        return [.. await Task.WhenAll(pings).ConfigureAwait(false)];
    }

    /// <summary>PING within <see cref="ClamdScannerOptions.ConnectTimeout"/>: null for PONG, else why not (naming the endpoint).</summary>
    public async Task<string?> PingOneAsync(ClamdEndpoint endpoint, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(_options.ConnectTimeout);
        try
        {
            var reply = await CommandAsync(endpoint, "PING", bounded.Token).ConfigureAwait(false);
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

    /// <summary>One command on a connection of its own to an endpoint that proved it is clamd; its reply.</summary>
    public async Task<string> CommandAsync(ClamdEndpoint endpoint, string command, CancellationToken cancellationToken)
    {
        using var socket = await endpoint.ConnectAsync(_options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        Verify(endpoint, socket);
        await socket.SendAsync(Encoding.ASCII.GetBytes("z" + command + "\0"), cancellationToken).ConfigureAwait(false);
        return await ClamdSession.ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>A clamd endpoint that failed to prove it is clamd.</summary>
internal sealed class UntrustedClamdException(string message) : IOException(message);
