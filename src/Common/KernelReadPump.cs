using System.IO.Pipelines;
using System.Runtime.InteropServices;

namespace OnAccess.Kernel;

/// <summary>What the pump does after a failed read(2).</summary>
internal enum ReadFailureAction
{
    /// <summary>Go on reading (the handler may have written a notification into the pipe).</summary>
    Continue,

    /// <summary>Stop reading and complete the pipe with the error.</summary>
    Stop,
}

/// <summary>
/// The inotify binding's kernel-reading plumbing (fanotify reads on the threads that decide, see FanotifyGroup.Read):
/// one dedicated, named background thread
/// waits on the kernel descriptor and on a wake-up eventfd and reads whole records (<see cref="KernelRead"/>) straight
/// into <see cref="PipeWriter"/> memory, and flushes. It never parses and never runs user code; the consumer parses from
/// the <see cref="PipeReader"/>. Backpressure: when the pipe holds <see cref="PauseWriterThreshold"/> unread bytes the
/// flush waits, the thread stops reading, and the kernel queue fills (then overflows, or holds openers for
/// permission events): the consumer must keep up, which is why it only dispatches.
/// </summary>
internal sealed class KernelReadPump : IDisposable
{
    /// <summary>Every read gets at least this much contiguous buffer, enough for the largest kernel record.</summary>
    public const int BufferSize = 64 * 1024;

    public const long PauseWriterThreshold = 16L * 1024 * 1024;

    private readonly SafeHandle _source;
    private readonly Func<Interop.ErrorInfo, PipeWriter, ReadFailureAction> _onReadFailure;
    private readonly SafeDescriptorHandle _wakeup;
    private readonly Pipe _pipe;
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _running = new(initialState: true);
    private volatile bool _stopping;
    private int _disposed;

    /// <param name="source">The kernel descriptor (fanotify group or inotify instance).</param>
    /// <param name="threadName">The reader thread's name, as shown by debuggers and /proc.</param>
    /// <param name="onReadFailure">Called on the reader thread with errno after a failed read (not EINTR/EAGAIN); it
    /// may write a notification record into the writer and must not block.</param>
    public KernelReadPump(SafeHandle source, string threadName, Func<Interop.ErrorInfo, PipeWriter, ReadFailureAction> onReadFailure)
    {
        _source = source;
        _onReadFailure = onReadFailure;
        var efd = global::Interop.Libc.EventFd(0, global::Interop.Libc.EFD_CLOEXEC | global::Interop.Libc.EFD_NONBLOCK);
        if (efd < 0)
        {
            throw global::Interop.GetExceptionForError(global::Interop.ErrorInfo.Last(), "eventfd");
        }

        _wakeup = new SafeDescriptorHandle(efd);
        _pipe = new Pipe(new PipeOptions(
            pauseWriterThreshold: PauseWriterThreshold,
            resumeWriterThreshold: PauseWriterThreshold / 2,
            minimumSegmentSize: BufferSize,
            useSynchronizationContext: false));
        _thread = new Thread(Run) { IsBackground = true, Name = threadName };
    }

    /// <summary>What the consumer parses from.</summary>
    public PipeReader Reader => _pipe.Reader;

    public void Start() => _thread.Start();

    /// <summary>Holds the reader thread before its next read, so the kernel queue fills (tests of overflow handling).</summary>
    internal void Pause() => _running.Reset();

    internal void Resume() => _running.Set();

    /// <summary>Wakes the reader thread, waits for it to leave, and completes the pipe. Safe to call more than once.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping = true;
        _running.Set();
        global::Interop.Libc.WriteAll(_wakeup, BitConverter.GetBytes(1UL));
        _pipe.Writer.CancelPendingFlush();
        if (_thread.IsAlive && _thread.ManagedThreadId != Environment.CurrentManagedThreadId)
        {
            _thread.Join();
        }

        _wakeup.Dispose();
        _running.Dispose();
    }

    private void Run()
    {
        var writer = _pipe.Writer;
        Exception? failure = null;
        var sourceAdded = false;
        try
        {
            _source.DangerousAddRef(ref sourceAdded);
            while (!_stopping)
            {
                _running.Wait();
                var memory = writer.GetMemory(BufferSize);
                var outcome = KernelRead.WaitAndRead(_source, _wakeup, memory.Span, -1, out var count, out var error);
                if (_stopping || outcome is KernelReadOutcome.WokenUp or KernelReadOutcome.End)
                {
                    break; // stopping, or the descriptor reached its end: nothing more will come
                }

                if (outcome == KernelReadOutcome.PollFailed)
                {
                    failure = global::Interop.GetExceptionForError(error, "poll");
                    break;
                }

                if (outcome == KernelReadOutcome.ReadFailed)
                {
                    if (_onReadFailure(error, writer) == ReadFailureAction.Stop)
                    {
                        failure = global::Interop.GetExceptionForError(error, "read");
                        break;
                    }
                }
                else
                {
                    writer.Advance(count);
                }

                var pending = writer.FlushAsync();
                var flush = pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception e)
        {
            failure = e; // never let an exception escape a background thread: the consumer sees it
        }
        finally
        {
            if (sourceAdded)
            {
                _source.DangerousRelease();
            }

            writer.Complete(failure);
        }
    }
}
