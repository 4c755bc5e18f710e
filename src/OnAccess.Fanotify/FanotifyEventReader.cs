using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using OnAccess.Kernel;

namespace OnAccess.Fanotify;

/// <summary>
/// Reads a group's events. A dedicated background thread ("OnAccess fanotify reader") blocks in poll/read and writes
/// raw records into a pipe; <see cref="ReadAllAsync"/> parses whole records from the pipe and yields one
/// <see cref="FanotifyEvent"/> each, on the consumer's side: user code never runs on the reading thread.
/// Queue overflows and failed reads are yielded too (<see cref="FanotifyEvent.IsQueueOverflow"/>,
/// <see cref="FanotifyEvent.ReadError"/>), logged and counted; they never stop the reader.
/// </summary>
/// <remarks>
/// Ownership: an event belongs to the reader until it is yielded, then to the consumer, who must dispose it (which
/// answers an unanswered permission event). Events parsed but not yet yielded when enumeration stops are disposed by
/// the reader. One consumer at a time.
/// </remarks>
public sealed class FanotifyEventReader : IAsyncDisposable
{
    private readonly FanotifyGroup _group;
    private readonly KernelReadPump _pump;
    private long _events;
    private long _overflows;
    private long _readFailures;

    internal FanotifyEventReader(FanotifyGroup group)
    {
        _group = group;
        _pump = new KernelReadPump(group.Handle, "OnAccess fanotify reader", OnReadFailure);
    }

    /// <summary>Events yielded so far, overflow and failure notices included.</summary>
    public long EventCount => Interlocked.Read(ref _events);

    /// <summary>Queue overflows seen (<c>FAN_Q_OVERFLOW</c>).</summary>
    public long OverflowCount => Interlocked.Read(ref _overflows);

    /// <summary>Failed reads, each an access the kernel has already denied (EMFILE, ENFILE, EOVERFLOW, EACCES, ...), and records that could not be parsed (EBADMSG).</summary>
    public long ReadFailureCount => Interlocked.Read(ref _readFailures);

    /// <summary>Yields events until the group closes, the reader is disposed, or <paramref name="cancellationToken"/> fires.</summary>
    /// <param name="cancellationToken">Stops the enumeration (the reader keeps running).</param>
    /// <returns>The events, in kernel order.</returns>
    public async IAsyncEnumerable<FanotifyEvent> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var pipe = _pump.Reader;
        var batch = new List<FanotifyEvent>();
        try
        {
            while (true)
            {
                ReadResult result;
                try
                {
                    result = await pipe.ReadAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (InvalidOperationException)
                {
                    yield break; // the pipe was completed and released by DisposeAsync
                }

                var buffer = result.Buffer;
                var consumed = Parse(buffer, batch);
                pipe.AdvanceTo(consumed, buffer.End);
                for (var i = 0; i < batch.Count; i++)
                {
                    var e = batch[i];
                    batch[i] = null!;
                    Interlocked.Increment(ref _events);
                    yield return e;
                }

                batch.Clear();
                if (result.IsCompleted || result.IsCanceled)
                {
                    yield break;
                }
            }
        }
        finally
        {
            foreach (var e in batch)
            {
                e?.Dispose();
            }
        }
    }

    /// <summary>Stops the reader thread. Events already parsed but not yielded are disposed.</summary>
    /// <returns>A task that completes when the thread has stopped.</returns>
    public ValueTask DisposeAsync()
    {
        StopPump();
        return ValueTask.CompletedTask;
    }

    internal void Start() => _pump.Start();

    internal void StopPump() => _pump.Dispose();

    /// <summary>Parses the whole records into <paramref name="batch"/>, counting and logging overflows and failed reads.</summary>
    private SequencePosition Parse(ReadOnlySequence<byte> buffer, List<FanotifyEvent> batch)
    {
        var first = batch.Count;
        FanotifyEventParser.ReadEvents(_group, buffer, batch); // the pump writes whole read(2) results: whole records
        for (var i = first; i < batch.Count; i++)
        {
            if (batch[i].ReadError is { } errno)
            {
                Log.ReadFailed(_group.Logger, errno, Interop.ErrorInfo.FromErrno(errno).Message, Interlocked.Increment(ref _readFailures));
            }
            else if (batch[i].IsQueueOverflow)
            {
                Log.QueueOverflow(_group.Logger, Interlocked.Increment(ref _overflows));
            }
        }

        return buffer.End;
    }

    private static ReadFailureAction OnReadFailure(Interop.ErrorInfo error, PipeWriter writer)
    {
        if (IsEventFailure(error.RawErrno))
        {
            FanotifyEventParser.WriteReadFailure(writer, error.RawErrno);
            return ReadFailureAction.Continue;
        }

        return ReadFailureAction.Stop;
    }

    /// <summary>
    /// Whether a failed read(2) stands for one event: the kernel copies one event at a time and, when it cannot give
    /// it a descriptor (EMFILE, ENFILE, EOVERFLOW, EACCES, EPERM, or whatever opening the file returned: EIO on a
    /// network filesystem, ENXIO for a device without a driver, EINVAL, ...), removes that event (denying a permission
    /// event) and returns the error. Report it and go on reading: only EBADF and EFAULT (this process's own fault)
    /// stop the reader.
    /// </summary>
    internal static bool IsEventFailure(int errno) => errno is not (Interop.Errno.EBADF or Interop.Errno.EFAULT);
}
