using System.Diagnostics;
using System.IO.Pipelines;
using OnAccess.Kernel;

namespace OnAccess.Fanotify;

/// <summary>
/// The one way a group's events are read, on whichever thread calls <see cref="Read"/> (the engine's reader and
/// rescuer, or the group's own reader thread): poll(2) on the group and a wake-up eventfd, one read(2) of at most the
/// group's read buffer size straight into a <see cref="Pipe"/> of the calling thread, and the records parsed from that
/// pipe's reader on the same thread (inline schedulers, no pause threshold: the flush completes at once and nothing
/// else is woken). The kernel returns whole records only, so each read is consumed whole and the pipe is empty again.
/// </summary>
internal sealed class FanotifyReadPath(FanotifyGroup group, SafeFanotifyHandle handle, int readBufferSize)
{
    private static readonly PipeOptions ReadPipeOptions = new(
        readerScheduler: PipeScheduler.Inline,
        writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 0, // a flush never waits: the same thread reads the pipe at once
        useSynchronizationContext: false);

    [ThreadStatic]
    private static Pipe? t_readPipe;

    private SafeDescriptorHandle? _wakeup;
    private volatile bool _closing;
    private int _injectedErrno;

    /// <summary>Waits for events (or the timeout, or the group closing), reads once, and parses what was read.</summary>
    /// <returns><see langword="false"/> once the group is closing: nothing more will come.</returns>
    public bool Read(List<FanotifyEvent> events, int millisecondsTimeout)
    {
        var wakeup = Wakeup();
        bool handleAdded = false, wakeupAdded = false;
        if (_closing || handle.IsClosed)
        {
            return false;
        }

        try
        {
            try
            {
                handle.DangerousAddRef(ref handleAdded);
                wakeup.DangerousAddRef(ref wakeupAdded);
            }
            catch (ObjectDisposedException)
            {
                return false; // closed meanwhile
            }

            var pipe = t_readPipe ??= new Pipe(ReadPipeOptions);
            var count = 0;
            var error = default(Interop.ErrorInfo);
            var injected = Interlocked.Exchange(ref _injectedErrno, 0);
            var outcome = injected == 0
                ? KernelRead.WaitAndRead(handle, wakeup, pipe.Writer.GetSpan(readBufferSize)[..readBufferSize], millisecondsTimeout, out count, out error)
                : KernelReadOutcome.ReadFailed;
            if (injected != 0)
            {
                error = Interop.ErrorInfo.FromErrno(injected);
            }

            switch (outcome)
            {
                case KernelReadOutcome.Data:
                    ParseFromPipe(group, pipe, count, events);
                    return true;
                case KernelReadOutcome.TimedOut:
                    return true;
                case KernelReadOutcome.PollFailed:
                    throw Interop.GetExceptionForError(error, "poll");
                case KernelReadOutcome.ReadFailed when FanotifyEventReader.IsEventFailure(error.RawErrno):
                    events.Add(FanotifyEvent.ForReadFailure(error.RawErrno));
                    return true;
                case KernelReadOutcome.ReadFailed:
                    throw Interop.GetExceptionForError(error, "read");
                default:
                    return false; // woken by Dispose, or the descriptor's end
            }
        }
        finally
        {
            if (wakeupAdded)
            {
                wakeup.DangerousRelease();
            }

            if (handleAdded)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Commits <paramref name="count"/> bytes read into the pipe and parses them from its reader, on this thread: the
    /// flush completes at once (no pause threshold, inline schedulers) and the read that follows finds them. The kernel
    /// returns whole records only, so everything written is consumed and the pipe is empty again.
    /// </summary>
    private static void ParseFromPipe(FanotifyGroup group, Pipe pipe, int count, List<FanotifyEvent> events)
    {
        pipe.Writer.Advance(count);
        var flushed = pipe.Writer.FlushAsync();
        Debug.Assert(flushed.IsCompleted, "a pipe without a pause threshold flushes at once");
        if (!pipe.Reader.TryRead(out var result))
        {
            throw new InvalidOperationException("The read pipe returned nothing after a flush.");
        }

        try
        {
            FanotifyEventParser.ReadEvents(group, result.Buffer, events);
        }
        finally
        {
            pipe.Reader.AdvanceTo(result.Buffer.End);
        }
    }

    /// <summary>Makes the next read fail with <paramref name="errno"/> as if read(2) had returned it.</summary>
    public void InjectFailure(int errno) => Volatile.Write(ref _injectedErrno, errno);

    /// <summary>Wakes every thread in <see cref="Read"/> and makes them, and every later call, return false.</summary>
    public void Close()
    {
        _closing = true;
        if (Volatile.Read(ref _wakeup) is { } wakeup)
        {
            Interop.Libc.WriteAll(wakeup, BitConverter.GetBytes(1UL));
            wakeup.Dispose(); // closed once the last reading thread has let it go
        }
    }

    private SafeDescriptorHandle Wakeup()
    {
        if (Volatile.Read(ref _wakeup) is { } existing)
        {
            return existing;
        }

        var efd = Interop.Libc.EventFd(0, Interop.Libc.EFD_CLOEXEC | Interop.Libc.EFD_NONBLOCK);
        if (efd < 0)
        {
            throw Interop.GetExceptionForError(Interop.ErrorInfo.Last(), "eventfd");
        }

        var created = new SafeDescriptorHandle(efd);
        if (Interlocked.CompareExchange(ref _wakeup, created, null) is { } raced)
        {
            created.Dispose();
            return raced;
        }

        if (_closing)
        {
            created.Dispose(); // Dispose ran before the eventfd existed: callers see the group closing and return
        }

        return created;
    }
}
