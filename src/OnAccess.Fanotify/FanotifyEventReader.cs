using System.Runtime.CompilerServices;
using System.Threading.Channels;
using OnAccess.Kernel;

namespace OnAccess.Fanotify;

/// <summary>
/// Reads a group's events for a consumer that awaits them (the binding's tests; the engine reads with
/// <see cref="FanotifyGroup.ReadEvents"/>): a dedicated background thread ("OnAccess fanotify reader")
/// reads them as <see cref="FanotifyGroup.ReadEvents"/> does (the one read path: read(2) into a pipe, parsed on that
/// thread) and hands them over; <see cref="ReadAllAsync"/> yields one <see cref="FanotifyEvent"/> each, on the
/// consumer's side: user code never runs on the reading thread. Queue overflows and failed reads are yielded too
/// (<see cref="FanotifyEvent.IsQueueOverflow"/>, <see cref="FanotifyEvent.ReadError"/>), logged and counted; they
/// never stop the reader.
/// </summary>
/// <remarks>
/// Ownership: an event belongs to the reader until it is yielded, then to the consumer, who must dispose it (which
/// answers an unanswered permission event). Events read but not yet yielded when the reader stops are disposed by
/// it. One consumer at a time. When 4,096 events wait unconsumed, the thread stops reading and the
/// kernel queue fills (then overflows, or holds openers for permission events): the consumer must keep up.
/// </remarks>
internal sealed class FanotifyEventReader : IAsyncDisposable
{
    /// <summary>How many events may wait for the consumer before the reading thread waits too.</summary>
    internal const int Capacity = 4096;

    /// <summary>How long the thread waits in one poll before it looks whether the reader was disposed.</summary>
    private const int PollMilliseconds = 100;

    private readonly FanotifyGroup _group;
    private readonly Channel<FanotifyEvent> _events = Channel.CreateBounded<FanotifyEvent>(new BoundedChannelOptions(Capacity)
    {
        SingleReader = true,
        SingleWriter = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    private readonly Thread _thread;
    private volatile bool _stopping;
    private long _yielded;
    private long _overflows;
    private long _readFailures;

    internal FanotifyEventReader(FanotifyGroup group)
    {
        _group = group;
        _thread = new Thread(Pump) { IsBackground = true, Name = "OnAccess fanotify reader" };
    }

    /// <summary>Events yielded so far, overflow and failure notices included.</summary>
    public long EventCount => Interlocked.Read(ref _yielded);

    /// <summary>Queue overflows seen (<c>FAN_Q_OVERFLOW</c>).</summary>
    public long OverflowCount => Interlocked.Read(ref _overflows);

    /// <summary>Failed reads, each an access the kernel has already denied (EMFILE, ENFILE, EOVERFLOW, EACCES, ...), and records that could not be parsed (EBADMSG).</summary>
    public long ReadFailureCount => Interlocked.Read(ref _readFailures);

    /// <summary>Yields events until the group closes, the reader is disposed, or <paramref name="cancellationToken"/> fires.</summary>
    /// <param name="cancellationToken">Stops the enumeration (the reader keeps running).</param>
    /// <returns>The events, in kernel order.</returns>
    public async IAsyncEnumerable<FanotifyEvent> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var reader = _events.Reader;
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (reader.TryRead(out var e))
            {
                if (e.ReadError is { } errno)
                {
                    Log.ReadFailed(_group.Logger, errno, Interop.ErrorInfo.FromErrno(errno).Message, Interlocked.Increment(ref _readFailures));
                }
                else if (e.IsQueueOverflow)
                {
                    Log.QueueOverflow(_group.Logger, Interlocked.Increment(ref _overflows));
                }

                Interlocked.Increment(ref _yielded);
                yield return e;
            }
        }
    }

    /// <summary>Stops the reader thread. Events read but not yielded are disposed.</summary>
    /// <returns>A completed task: the thread stops within a poll.</returns>
    public ValueTask DisposeAsync()
    {
        StopPump();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Whether a failed read(2) stands for one event: the kernel copies one event at a time and, when it cannot give
    /// it a descriptor (EMFILE, ENFILE, EOVERFLOW, EACCES, EPERM, or whatever opening the file returned: EIO on a
    /// network filesystem, ENXIO for a device without a driver, EINVAL, ...), removes that event (denying a permission
    /// event) and returns the error. Report it and go on reading: only EBADF and EFAULT (this process's own fault)
    /// stop the reader.
    /// </summary>
    internal static bool IsEventFailure(int errno) => errno is not (Interop.Errno.EBADF or Interop.Errno.EFAULT);

    internal void Start() => _thread.Start();

    internal void StopPump()
    {
        _stopping = true;
        _events.Writer.TryComplete();
        while (_events.Reader.TryRead(out var e))
        {
            e.Dispose();
        }
    }

    private void Pump()
    {
        var batch = new List<FanotifyEvent>();
        try
        {
            while (!_stopping && _group.Read(batch, PollMilliseconds))
            {
                for (var i = 0; i < batch.Count; i++)
                {
                    var e = batch[i];
                    batch[i] = null!; // from here on the consumer's, or disposed below
                    if (!Hand(e))
                    {
                        e.Dispose();
                    }
                }

                batch.Clear();
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            Log.ReaderStopped(_group.Logger, e.Message);
        }
        finally
        {
            foreach (var e in batch)
            {
                e?.Dispose(); // read and not handed over
            }

            _events.Writer.TryComplete();
        }
    }

    /// <summary>Hands one event to the consumer, waiting while <see cref="Capacity"/> wait; false once stopped.</summary>
    private bool Hand(FanotifyEvent e)
    {
        while (!_events.Writer.TryWrite(e))
        {
            if (!_events.Writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult())
            {
                return false;
            }
        }

        return true;
    }
}
