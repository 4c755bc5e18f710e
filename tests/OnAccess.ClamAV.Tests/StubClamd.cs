using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace OnAccess.ClamAV.Tests;

/// <summary>
/// A stand-in for clamd on a unix socket, run by this (root) process, so ClamdScanner's trust check accepts it when
/// the socket lies in a directory the test created (0700, root's). It speaks what ClamdScanner sends: z- and
/// n-commands, IDSESSION (replies prefixed with the request number), INSTREAM (EICAR is FOUND, anything else OK),
/// PING, VERSION and END. It holds every INSTREAM reply until <c>hold</c> scans are waiting for one at the same time
/// (each on its own connection, since a session has one request in flight), or until the timeout, then answers them
/// all: <see cref="PeakWaiting"/> says how many it saw at once.
/// </summary>
internal sealed class StubClamd : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly int _hold;
    private readonly TimeSpan _timeout;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<Task> _connections = [];
    private readonly Task _accepting;
    private int _waiting;
    private int _peakWaiting;
    private string? _error;
    private long _limit = long.MaxValue;
    private string _refusal = "INSTREAM size limit exceeded. ERROR";

    private StubClamd(string socketPath, int hold, TimeSpan timeout)
    {
        SocketPath = socketPath;
        _hold = hold;
        _timeout = timeout;
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        _listener.Listen(64);
        _accepting = AcceptAsync();
    }

    public string SocketPath { get; }

    /// <summary>The most scans that waited for their reply at the same time.</summary>
    public int PeakWaiting => Volatile.Read(ref _peakWaiting);

    public static StubClamd Start(string socketPath, int hold, TimeSpan timeout) => new(socketPath, hold, timeout);

    /// <summary>A stub that answers every INSTREAM with clamd's ERROR for a temporary file it cannot create.</summary>
    public static StubClamd StartFailing(string socketPath) => new(socketPath, 1, TimeSpan.Zero) { _error = "stream: Can't create temporary file ERROR" };

    /// <summary>
    /// A stub that, like clamd, stops reading a stream once it passes <paramref name="limit"/> bytes, replies
    /// "INSTREAM size limit exceeded. ERROR" and closes the connection while the scanner may still be sending.
    /// </summary>
    public static StubClamd StartLimited(string socketPath, long limit, string refusal = "INSTREAM size limit exceeded. ERROR") => new(socketPath, 1, TimeSpan.Zero) { _limit = limit, _refusal = refusal };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _release.TrySetResult();
        _listener.Dispose();
        Task[] connections;
        lock (_connections)
        {
            connections = [.. _connections];
        }

        await Task.WhenAll([_accepting, .. connections]).WaitAsync(TimeSpan.FromSeconds(20));
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            lock (_connections)
            {
                _connections.Add(ServeAsync(client));
            }
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var stream = new NetworkStream(client, ownsSocket: true);
        var session = false;
        var id = 0;
        try
        {
            while (await ReadCommandAsync(stream) is { } command)
            {
                string reply;
                switch (command)
                {
                    case "IDSESSION":
                        session = true;
                        continue;
                    case "END":
                        return;
                    case "PING":
                        reply = "PONG";
                        break;
                    case "VERSION":
                        reply = "ClamAV stub/1/Thu Jan  1 00:00:00 1970";
                        break;
                    case "INSTREAM":
                        var content = await ReadChunksAsync(stream);
                        if (content is null)
                        {
                            await stream.WriteAsync(Encoding.ASCII.GetBytes((session ? $"{++id}: {_refusal}" : _refusal) + "\0"), _stop.Token);
                            return; // unread chunks are left in the socket: closing it is what the sender sees
                        }

                        if (_error is not null)
                        {
                            reply = _error;
                            break;
                        }

                        await HoldAsync();
                        reply = content.AsSpan().SequenceEqual(TestFiles.Eicar) ? "stream: Eicar-Test-Signature FOUND" : "stream: OK";
                        break;
                    default:
                        reply = "UNKNOWN COMMAND";
                        break;
                }

                var text = session ? $"{++id}: {reply}" : reply;
                await stream.WriteAsync(Encoding.ASCII.GetBytes(text + "\0"), _stop.Token);
                if (!session)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // the scanner closed the session, or the stub is stopping
        }
    }

    /// <summary>Counts this scan as waiting, and waits until enough are (or the timeout passes).</summary>
    private async Task HoldAsync()
    {
        var waiting = Interlocked.Increment(ref _waiting);
        int peak;
        while (waiting > (peak = Volatile.Read(ref _peakWaiting)) && Interlocked.CompareExchange(ref _peakWaiting, waiting, peak) != peak)
        {
        }

        if (waiting >= _hold)
        {
            _release.TrySetResult();
        }

        try
        {
            await _release.Task.WaitAsync(_timeout, _stop.Token);
        }
        catch (TimeoutException)
        {
            _release.TrySetResult(); // too few came: answer everyone from now on, and let the test fail on PeakWaiting
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <summary>A zCOMMAND\0 or nCOMMAND\n; null at the end of the connection.</summary>
    private async Task<string?> ReadCommandAsync(NetworkStream stream)
    {
        var one = new byte[1];
        if (await stream.ReadAsync(one, _stop.Token) == 0)
        {
            return null;
        }

        var end = one[0] switch { (byte)'z' => (byte)0, (byte)'n' => (byte)'\n', _ => throw new IOException($"a command starts with '{(char)one[0]}'") };
        var command = new List<byte>();
        while (true)
        {
            await stream.ReadExactlyAsync(one, _stop.Token);
            if (one[0] == end)
            {
                return Encoding.ASCII.GetString([.. command]);
            }

            command.Add(one[0]);
        }
    }

    /// <summary>The stream's content; null once it passes the stub's limit (the rest is not read).</summary>
    private async Task<byte[]?> ReadChunksAsync(NetworkStream stream)
    {
        var content = new MemoryStream();
        var length = new byte[4];
        while (true)
        {
            await stream.ReadExactlyAsync(length, _stop.Token);
            var n = BinaryPrimitives.ReadInt32BigEndian(length);
            if (n == 0)
            {
                return content.ToArray();
            }

            if (content.Length + n > _limit)
            {
                return null;
            }

            var chunk = new byte[n];
            await stream.ReadExactlyAsync(chunk, _stop.Token);
            content.Write(chunk);
        }
    }
}
