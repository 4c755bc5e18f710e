using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnAccess.Config;

namespace OnAccess.ClamAV;

/// <summary>How <see cref="ClamdScanner"/> hands a file to clamd.</summary>
public enum ClamdScanMode
{
    /// <summary>FILDES on a unix socket (the event's descriptor is passed, clamd reads that very file); INSTREAM on TCP.</summary>
    Auto,

    /// <summary>Always stream the content (INSTREAM), read through the descriptor.</summary>
    Stream,
}

/// <summary>Where clamd is and how to talk to it.</summary>
public sealed class ClamdScannerOptions
{
    /// <summary>
    /// clamd endpoints, tried in turn (failover): <c>unix:/path/to/clamd.ctl</c> or <c>tcp://host:port</c>.
    /// </summary>
    public IList<string> Endpoints { get; set; } = [];

    /// <summary>FILDES where possible (the default), or always INSTREAM.</summary>
    public ClamdScanMode Mode { get; set; }

    /// <summary>clamd's <c>StreamMaxLength</c>: larger files are reported as skipped, never as clean. The default is 100 MiB.</summary>
    public long StreamMaxLength { get; set; } = ClamdConf.DefaultStreamMaxLength;

    /// <summary>How long a connection attempt may take. The default is 5 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Idle sessions kept per endpoint for reuse. The default is 8.</summary>
    public int MaxIdleSessions { get; set; } = 8;

    /// <summary>
    /// The users clamd may run as, besides root: a unix endpoint whose listening process runs as anyone else, or whose
    /// socket sits where anyone else could have put it, is refused before anything is sent to it (the scan then follows
    /// <c>OnAccessDenyOnError</c>). <see cref="FromClamdConf"/> adds clamd.conf's <c>User</c>. The default is
    /// <c>clamav</c>, the user Debian's and most packages' clamd runs as.
    /// </summary>
    public IList<string> TrustedUsers { get; set; } = ["clamav"];

    /// <summary>Takes the endpoints and the stream limit from a clamd.conf (<c>LocalSocket</c>, <c>TCPSocket</c>, <c>TCPAddr</c>, <c>StreamMaxLength</c>).</summary>
    /// <param name="conf">The parsed clamd.conf.</param>
    /// <returns>This instance.</returns>
    public ClamdScannerOptions FromClamdConf(ClamdConf conf)
    {
        ArgumentNullException.ThrowIfNull(conf);
        if (conf.LocalSocket is { } socket)
        {
            Endpoints.Add("unix:" + socket);
        }

        if (conf.TcpSocket is { } port)
        {
            var addresses = conf.TcpAddresses.Where(a => a != "any").ToList();
            foreach (var address in addresses.Count > 0 ? addresses : ["127.0.0.1"])
            {
                Endpoints.Add($"tcp://{(address.Contains(':', StringComparison.Ordinal) ? "[" + address + "]" : address)}:{port}");
            }
        }

        StreamMaxLength = conf.StreamMaxLength;
        if (conf.GetValue("User") is { } user && !TrustedUsers.Contains(user))
        {
            TrustedUsers.Add(user);
        }

        return this;
    }
}

/// <summary>
/// Scans with clamd. On a unix socket the file's descriptor is passed with SCM_RIGHTS (FILDES), so clamd reads the
/// very file that was opened and never reopens a path; on TCP (or by choice) the content is streamed (INSTREAM) from
/// the descriptor, and a descriptor is never sent over TCP. Before a unix endpoint is given anything it must prove
/// it is clamd: its process runs as root or a trusted user, and its socket lies where no other user could have put it
/// (<see cref="ClamdScannerOptions.TrustedUsers"/>). Connections are kept in IDSESSION sessions and reused; every scan
/// has real cancellation (the session is dropped); endpoints fail over in order. Scans run in parallel: there is no
/// global lock.
/// </summary>
public sealed partial class ClamdScanner : IScanner, ISignatureGeneration, IAsyncDisposable
{
    private const int ChunkSize = 64 * 1024;
    private readonly ClamdScannerOptions _options;
    private readonly Endpoint[] _endpoints;
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
        _endpoints = [.. options.Endpoints.Select(Endpoint.Parse)];
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
    public int PeakOpenSessions => _endpoints.Max(e => e.PeakOpen);

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
        foreach (var endpoint in _endpoints)
        {
            try
            {
                result[endpoint.Text] = await SimpleCommandAsync(endpoint, "PING", cancellationToken).ConfigureAwait(false) == "PONG";
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException or OperationCanceledException)
            {
                result[endpoint.Text] = false;
            }
        }

        return result;
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

    private async Task<(ScanResult Result, bool Failover)> ScanOnAsync(Endpoint endpoint, ScanRequest request, bool stream, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 2; attempt++)
        {
            Session session;
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
    private void Verify(Endpoint endpoint, Socket socket)
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

    private async Task<string> SimpleCommandAsync(Endpoint endpoint, string command, CancellationToken cancellationToken)
    {
        using var socket = await endpoint.ConnectAsync(_options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        Verify(endpoint, socket);
        await socket.SendAsync(Encoding.ASCII.GetBytes("z" + command + "\0"), cancellationToken).ConfigureAwait(false);
        return await Session.ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false);
    }

    private sealed class Endpoint
    {
        private readonly ConcurrentBag<Session> _idle = [];
        private int _open;
        private int _peak;
        private long _lastRefusalReport = long.MinValue;

        private Endpoint(string text, EndPoint address, bool isUnix)
        {
            Text = text;
            Address = address;
            IsUnix = isUnix;
        }

        public string Text { get; }

        public EndPoint Address { get; }

        public bool IsUnix { get; }

        public int PeakOpen => Volatile.Read(ref _peak);

        /// <summary>A unix endpoint's socket path.</summary>
        public string? SocketPath => IsUnix ? Text["unix:".Length..] : null;

        /// <summary>
        /// A TCP port on this machine that an ordinary user may bind (at or above net.ipv4.ip_unprivileged_port_start)
        /// whenever clamd is not listening: whoever does would be sent the content of every scanned file.
        /// </summary>
        public bool IsLocalTcpAnyoneCouldTake =>
            Address is IPEndPoint { } ip && IPAddress.IsLoopback(ip.Address) && ip.Port >= UnprivilegedPortStart()
            || Address is DnsEndPoint { Host: "localhost" } dns && dns.Port >= UnprivilegedPortStart();

        private static int UnprivilegedPortStart()
        {
            try
            {
                return int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim(), CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                return 1024;
            }
        }

        public static Endpoint Parse(string text)
        {
            if (text.StartsWith("unix:", StringComparison.Ordinal))
            {
                return new Endpoint(text, new UnixDomainSocketEndPoint(text["unix:".Length..]), isUnix: true);
            }

            if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme == "tcp" && uri.Port > 0)
            {
                var host = uri.Host.Trim('[', ']');
                EndPoint address = IPAddress.TryParse(host, out var ip) ? new IPEndPoint(ip, uri.Port) : new DnsEndPoint(host, uri.Port);
                return new Endpoint(text, address, isUnix: false);
            }

            throw new ArgumentException($"'{text}' is not a clamd endpoint: use unix:/path/to/socket or tcp://host:port.", nameof(text));
        }

        public async Task<Socket> ConnectAsync(TimeSpan timeout, CancellationToken cancellationToken)
        {
            var socket = IsUnix
                ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                : new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            connect.CancelAfter(timeout);
            try
            {
                await socket.ConnectAsync(Address, connect.Token).ConfigureAwait(false);
                return socket;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                socket.Dispose();
                throw new TimeoutException($"connecting took longer than {timeout.TotalMilliseconds} ms");
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        /// <summary>An idle session, or (when there is none, or <paramref name="fresh"/>) a new verified one.</summary>
        public async Task<Session> RentAsync(TimeSpan timeout, Action<Socket> verify, bool fresh, CancellationToken cancellationToken)
        {
            if (!fresh && _idle.TryTake(out var session))
            {
                return session;
            }

            var socket = await ConnectAsync(timeout, cancellationToken).ConfigureAwait(false);
            try
            {
                verify(socket);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            var open = Interlocked.Increment(ref _open);
            int peak;
            while (open > (peak = Volatile.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, open, peak) != peak)
            {
            }

            var created = new Session(socket, () => Interlocked.Decrement(ref _open));
            await created.BeginAsync(cancellationToken).ConfigureAwait(false);
            return created;
        }

        /// <summary>Whether a refusal should be logged now: once a minute per endpoint at most.</summary>
        public bool TryReportRefusal()
        {
            var now = Environment.TickCount64;
            var last = Interlocked.Read(ref _lastRefusalReport);
            return now - last >= 60_000 && Interlocked.CompareExchange(ref _lastRefusalReport, now, last) == last;
        }

        public void Return(Session session, int maxIdle)
        {
            if (_idle.Count < maxIdle)
            {
                _idle.Add(session);
            }
            else
            {
                session.Dispose();
            }
        }

        public void Clear()
        {
            while (_idle.TryTake(out var session))
            {
                session.Dispose();
            }
        }
    }

    /// <summary>One IDSESSION connection: commands and replies in turn, replies prefixed with their request id.</summary>
    private sealed class Session(Socket socket, Action onClose) : IDisposable
    {
        private int _nextId;
        private int _disposed;

        public bool Used => _nextId > 0;

        public async Task BeginAsync(CancellationToken cancellationToken) =>
            await socket.SendAsync("zIDSESSION\0"u8.ToArray(), cancellationToken).ConfigureAwait(false);

        public async Task<string> FildesAsync(Microsoft.Win32.SafeHandles.SafeFileHandle file, CancellationToken cancellationToken)
        {
            var id = ++_nextId;
            await socket.SendAsync("zFILDES\0"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            if (Interop.Libc.SendDescriptor(socket.SafeHandle, file) is { } error)
            {
                throw new IOException($"passing the descriptor failed: {error}");
            }

            return StripId(await ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false), id);
        }

        /// <summary>
        /// Streams at most <paramref name="size"/> bytes (the size when the access happened): a file that keeps
        /// growing is not read to its end. Says whether there was more (then the verdict does not cover it all).
        /// </summary>
        public async Task<(string Reply, bool Grew)> InstreamAsync(Microsoft.Win32.SafeHandles.SafeFileHandle file, long size, CancellationToken cancellationToken)
        {
            var id = ++_nextId;
            await socket.SendAsync("zINSTREAM\0"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize + 4);
            var grew = false;
            try
            {
                long offset = 0;
                while (true)
                {
                    var wanted = (int)Math.Min(ChunkSize, size - offset);
                    var n = wanted <= 0 ? 0 : await RandomAccess.ReadAsync(file, buffer.AsMemory(4, wanted), offset, cancellationToken).ConfigureAwait(false);
                    BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)n);
                    await socket.SendAsync(buffer.AsMemory(0, n + 4), cancellationToken).ConfigureAwait(false);
                    if (n == 0)
                    {
                        grew = offset >= size && RandomAccess.Read(file, buffer.AsSpan(4, 1), offset) > 0;
                        break;
                    }

                    offset += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            return (StripId(await ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false), id), grew);
        }

        /// <summary>Reads one NUL-terminated reply.</summary>
        public static async Task<string> ReadReplyAsync(Socket socket, CancellationToken cancellationToken)
        {
            var reply = new List<byte>(64);
            var one = new byte[256];
            while (true)
            {
                var n = await socket.ReceiveAsync(one.AsMemory(0, 1), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new IOException("clamd closed the connection before replying");
                }

                if (one[0] == 0)
                {
                    return Encoding.UTF8.GetString([.. reply]);
                }

                reply.Add(one[0]);
                if (reply.Count > 64 * 1024)
                {
                    throw new InvalidDataException("the reply is not NUL-terminated");
                }
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                socket.Dispose();
                onClose();
            }
        }

        private static string StripId(string reply, int id)
        {
            var prefix = id.ToString(CultureInfo.InvariantCulture) + ": ";
            return reply.StartsWith(prefix, StringComparison.Ordinal)
                ? reply[prefix.Length..]
                : throw new InvalidDataException($"the reply '{reply}' does not answer request {id}");
        }
    }
}

/// <summary>A clamd endpoint that failed to prove it is clamd.</summary>
internal sealed class UntrustedClamdException(string message) : IOException(message);
