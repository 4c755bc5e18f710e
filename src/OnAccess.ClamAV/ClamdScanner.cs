using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
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
        return this;
    }
}

/// <summary>
/// Scans with clamd. On a unix socket the file's descriptor is passed with SCM_RIGHTS (FILDES), so clamd reads the
/// very file that was opened and never reopens a path; on TCP (or by choice) the content is streamed (INSTREAM) from
/// the descriptor. Connections are kept in IDSESSION sessions and reused; every scan has real cancellation (the
/// session is dropped); endpoints fail over in order. Scans run in parallel: there is no global lock.
/// </summary>
public sealed class ClamdScanner : IScanner, ISignatureGeneration, IAsyncDisposable
{
    private const int ChunkSize = 64 * 1024;
    private readonly ClamdScannerOptions _options;
    private readonly Endpoint[] _endpoints;
    private int _preferred;
    private long _generation;
    private long _nextVersionCheck;
    private int _versionCheckRunning;
    private string? _lastVersion;

    /// <summary>Creates the scanner; nothing connects until the first scan or <see cref="PingAsync"/>.</summary>
    /// <param name="options">The endpoints and limits.</param>
    /// <exception cref="ArgumentException">No endpoint, or one that is neither <c>unix:</c> nor <c>tcp://</c>.</exception>
    public ClamdScanner(ClamdScannerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("No clamd endpoint: set Endpoints (unix:/path or tcp://host:port) or use FromClamdConf.", nameof(options));
        }

        _options = options;
        _endpoints = [.. options.Endpoints.Select(Endpoint.Parse)];
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
                Interlocked.Exchange(ref _nextVersionCheck, now + 10_000);
                _ = RefreshGenerationAsync();
            }

            return Interlocked.Read(ref _generation);
        }
    }

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

            _lastVersion = version;
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
                session = await endpoint.RentAsync(_options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException or OperationCanceledException)
            {
                return (ScanResult.Error($"refused: cannot connect to clamd at {endpoint.Text} ({e.Message})"), true);
            }

            var reused = session.Used;
            try
            {
                var reply = stream
                    ? await session.InstreamAsync(request.File, cancellationToken).ConfigureAwait(false)
                    : await session.FildesAsync(request.File, cancellationToken).ConfigureAwait(false);
                endpoint.Return(session, _options.MaxIdleSessions);
                return (Interpret(reply), false);
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
                    continue; // a pooled session clamd had closed (IdleTimeout): try once on a fresh one
                }

                return (ScanResult.Error($"protocol: the connection to clamd at {endpoint.Text} failed ({e.Message})"), true);
            }
        }

        return (ScanResult.Error($"protocol: clamd at {endpoint.Text} closed every session"), true);
    }

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
        await socket.SendAsync(Encoding.ASCII.GetBytes("z" + command + "\0"), cancellationToken).ConfigureAwait(false);
        return await Session.ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false);
    }

    private sealed class Endpoint
    {
        private readonly ConcurrentBag<Session> _idle = [];
        private int _open;
        private int _peak;

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

        public async Task<Session> RentAsync(TimeSpan timeout, CancellationToken cancellationToken)
        {
            if (_idle.TryTake(out var session))
            {
                return session;
            }

            var socket = await ConnectAsync(timeout, cancellationToken).ConfigureAwait(false);
            var open = Interlocked.Increment(ref _open);
            int peak;
            while (open > (peak = Volatile.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, open, peak) != peak)
            {
            }

            var fresh = new Session(socket, () => Interlocked.Decrement(ref _open));
            await fresh.BeginAsync(cancellationToken).ConfigureAwait(false);
            return fresh;
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

        public async Task<string> InstreamAsync(Microsoft.Win32.SafeHandles.SafeFileHandle file, CancellationToken cancellationToken)
        {
            var id = ++_nextId;
            await socket.SendAsync("zINSTREAM\0"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize + 4);
            try
            {
                long offset = 0;
                while (true)
                {
                    var n = await RandomAccess.ReadAsync(file, buffer.AsMemory(4, ChunkSize), offset, cancellationToken).ConfigureAwait(false);
                    BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)n);
                    await socket.SendAsync(buffer.AsMemory(0, n + 4), cancellationToken).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }

                    offset += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            return StripId(await ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false), id);
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
