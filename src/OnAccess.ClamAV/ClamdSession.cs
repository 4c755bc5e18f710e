using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace OnAccess.ClamAV;

/// <summary>One IDSESSION connection: commands and replies in turn, replies prefixed with their request id.</summary>
internal sealed class ClamdSession(Socket socket, Action onClose) : IDisposable
{
    private int _nextId;
    private int _disposed;

    public bool Used => _nextId > 0;

    /// <summary>clamd ended the session after its last reply (it does after refusing a stream over its limit).</summary>
    public bool EndedByClamd { get; private set; }

    public async Task BeginAsync(CancellationToken cancellationToken) =>
        await socket.SendAsync("zIDSESSION\0"u8.ToArray(), cancellationToken).ConfigureAwait(false);

    public async Task<string> FildesAsync(Microsoft.Win32.SafeHandles.SafeFileHandle file, CancellationToken cancellationToken)
    {
        var id = ++_nextId;
        await socket.SendAsync("zFILDES\0"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        while (Interop.Libc.SendDescriptor(socket.SafeHandle, file) is { } error)
        {
            if (error.RawErrno != Interop.Errno.EAGAIN)
            {
                throw new IOException($"passing the descriptor failed: {error}");
            }

            // clamd reads nothing (frozen, or dying): wait for room a little at a time, within the scan's deadline.
            // It used to spin here, deaf to the deadline, for as long as clamd took to go (10 s seen in a test).
            cancellationToken.ThrowIfCancellationRequested();
            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
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
        var buffer = ArrayPool<byte>.Shared.Rent(ClamdScanner.ChunkSize + 4);
        var grew = false;
        try
        {
            long offset = 0;
            while (true)
            {
                var wanted = (int)Math.Min(ClamdScanner.ChunkSize, size - offset);
                int n;
                try
                {
                    n = wanted <= 0 ? 0 : await RandomAccess.ReadAsync(file, buffer.AsMemory(4, wanted), offset, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new UnreadableFileException($"reading the file at offset {offset} failed ({e.Message})", e);
                }

                BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)n);
                try
                {
                    await socket.SendAsync(buffer.AsMemory(0, n + 4), cancellationToken).ConfigureAwait(false);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.Shutdown or SocketError.ConnectionReset or SocketError.ConnectionAborted)
                {
                    // clamd replies and closes as soon as a stream passes its StreamMaxLength, while the rest is still
                    // being sent: its reply, already here, is the answer. Without one, the connection failed.
                    EndedByClamd = true;
                    return (await ReplyLeftBehindAsync(id, e, cancellationToken).ConfigureAwait(false), false);
                }

                if (n == 0)
                {
                    try
                    {
                        grew = offset >= size && RandomAccess.Read(file, buffer.AsSpan(4, 1), offset) > 0;
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        throw new UnreadableFileException($"reading the file at offset {offset} failed ({e.Message})", e);
                    }

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

    /// <summary>The refusal clamd sent before it closed the connection a chunk was being sent on; else that failure.</summary>
    private async Task<string> ReplyLeftBehindAsync(int id, SocketException sendFailed, CancellationToken cancellationToken)
    {
        string reply;
        try
        {
            reply = StripId(await ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false), id);
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException)
        {
            reply = string.Empty;
        }

        // A refusal may end a stream early, and so may a detection in what was read; a clean verdict on a file clamd
        // did not read whole covers nothing, so it is never believed.
        if (!reply.EndsWith(" ERROR", StringComparison.Ordinal) && !reply.EndsWith(" FOUND", StringComparison.Ordinal))
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(sendFailed);
        }

        return reply;
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

/// <summary>A clamd endpoint that neither replied to a scan nor answered PING in time.</summary>
internal sealed class FrozenClamdException(string message) : Exception(message);

/// <summary>The scanned file could not be read while it was streamed (no endpoint's fault).</summary>
internal sealed class UnreadableFileException(string message, Exception inner) : Exception(message, inner);
