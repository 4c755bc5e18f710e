using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace OnAccess.ClamAV;

internal sealed class ClamdEndpoint
{
    private readonly ConcurrentBag<ClamdSession> _idle = [];
    private int _open;
    private int _peak;
    private long _lastRefusalReport = long.MinValue;
    private int _inFlight;
    private long _scans;
    private long _failures;
    private long _ejections;
    private int _consecutiveFailures;
    private int _ejected;
    private string? _version;
    private string? _lastFailure;

    private ClamdEndpoint(string text, EndPoint address, bool isUnix)
    {
        Text = text;
        Address = address;
        IsUnix = isUnix;
    }

    public string Text { get; }

    public EndPoint Address { get; }

    public bool IsUnix { get; }

    public int PeakOpen => Volatile.Read(ref _peak);

    /// <summary>Scans sent to this endpoint and not yet answered.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Scans this endpoint answered.</summary>
    public long Scans => Interlocked.Read(ref _scans);

    /// <summary>Attempts that failed here (connect error, timeout, no reply, malformed reply, refused).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>How many times this endpoint was taken out of the balance.</summary>
    public long Ejections => Interlocked.Read(ref _ejections);

    /// <summary>Out of the balance until a probe's PING is answered.</summary>
    public bool IsEjected => Volatile.Read(ref _ejected) != 0;

    /// <summary>The last VERSION this endpoint answered, or null before one.</summary>
    public string? Version
    {
        get => Volatile.Read(ref _version);
        set => Volatile.Write(ref _version, value);
    }

    /// <summary>Why the last failed attempt here failed.</summary>
    public string? LastFailure => Volatile.Read(ref _lastFailure);

    /// <summary>A scan is sent here.</summary>
    public void Enter() => Interlocked.Increment(ref _inFlight);

    /// <summary>A scan sent here is over: answered (counted) or failed (see <see cref="RecordFailure"/>).</summary>
    public void Exit(bool answered)
    {
        Interlocked.Decrement(ref _inFlight);
        if (answered)
        {
            Interlocked.Increment(ref _scans);
            Volatile.Write(ref _consecutiveFailures, 0);
        }
    }

    /// <summary>Counts a failed attempt; true when this one takes the endpoint out of the balance.</summary>
    public bool RecordFailure(string reason, int ejectAfter)
    {
        Interlocked.Increment(ref _failures);
        Volatile.Write(ref _lastFailure, reason);
        if (Interlocked.Increment(ref _consecutiveFailures) >= ejectAfter && Interlocked.CompareExchange(ref _ejected, 1, 0) == 0)
        {
            Interlocked.Increment(ref _ejections);
            return true;
        }

        return false;
    }

    /// <summary>Back in the balance (a probe's PING was answered); sessions from before are dropped.</summary>
    public bool Readmit()
    {
        Clear();
        Volatile.Write(ref _consecutiveFailures, 0);
        return Interlocked.CompareExchange(ref _ejected, 0, 1) == 1;
    }

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

    public static ClamdEndpoint Parse(string text)
    {
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            return new ClamdEndpoint(text, new UnixDomainSocketEndPoint(text["unix:".Length..]), isUnix: true);
        }

        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme == "tcp" && uri.Port > 0)
        {
            var host = uri.Host.Trim('[', ']');
            EndPoint address = IPAddress.TryParse(host, out var ip) ? new IPEndPoint(ip, uri.Port) : new DnsEndPoint(host, uri.Port);
            return new ClamdEndpoint(text, address, isUnix: false);
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
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException(WhyNotConnected(e), e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The real reason a connection failed, in words: .NET reports a unix socket path that does not exist as "Cannot
    /// assign requested address", and one that is not a socket as "Connection refused".
    /// </summary>
    private string WhyNotConnected(SocketException e)
    {
        if (SocketPath is { } path)
        {
            var type = Interop.Libc.GetFileType(path, followLinks: true, out var errno);
            if (type is null)
            {
                return errno == Interop.Errno.ENOENT ? $"no such socket: {path} does not exist (is clamd running, and is this its LocalSocket?)" : $"{path} cannot be examined ({Interop.ErrorInfo.FromErrno(errno).Message})";
            }

            if (type != Interop.Libc.S_IFSOCK)
            {
                return $"{path} is not a socket";
            }

            return e.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => $"connection refused: nothing listens at {path} (a socket left behind by a clamd that stopped?)",
                SocketError.AccessDenied => $"permission denied connecting to {path}",
                _ => $"{path}: {e.Message}",
            };
        }

        return e.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => $"connection refused: nothing listens on {Text["tcp://".Length..]}",
            SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => $"the host of {Text} cannot be resolved ({e.Message})",
            _ => $"{Text}: {e.Message}",
        };
    }

    /// <summary>An idle session, or (when there is none, or <paramref name="fresh"/>) a new verified one.</summary>
    public async Task<ClamdSession> RentAsync(TimeSpan timeout, Action<Socket> verify, bool fresh, CancellationToken cancellationToken)
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

        var created = new ClamdSession(socket, () => Interlocked.Decrement(ref _open));
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

    public void Return(ClamdSession session, int maxIdle)
    {
        if (_idle.Count < maxIdle && !session.EndedByClamd)
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
