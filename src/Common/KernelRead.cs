using System.Runtime.InteropServices;

namespace OnAccess.Kernel;

/// <summary>What one <see cref="KernelRead.WaitAndRead"/> came to.</summary>
internal enum KernelReadOutcome
{
    /// <summary>Bytes were read.</summary>
    Data,

    /// <summary>The descriptor reached its end (read returned 0): nothing more will come.</summary>
    End,

    /// <summary>The wake-up descriptor was signalled: stop.</summary>
    WokenUp,

    /// <summary>The timeout passed, or (with a timeout) another reader took what was there.</summary>
    TimedOut,

    /// <summary>poll(2) failed (not EINTR).</summary>
    PollFailed,

    /// <summary>read(2) failed (not EINTR or EAGAIN).</summary>
    ReadFailed,
}

/// <summary>
/// The one wait-then-read of the kernel bindings: poll(2) on a kernel descriptor and a wake-up eventfd, then one
/// read(2). Used by <see cref="KernelReadPump"/>'s thread (inotify) and by fanotify's reading threads.
/// </summary>
internal static class KernelRead
{
    /// <summary>
    /// Waits until <paramref name="source"/> is readable, <paramref name="wakeup"/> is signalled or
    /// <paramref name="millisecondsTimeout"/> passes (-1: no timeout), then reads once into <paramref name="buffer"/>.
    /// EINTR is retried; EAGAIN (another thread read it first) waits again, or counts as a timeout when there is one.
    /// The caller keeps both handles alive (DangerousAddRef) for the call.
    /// </summary>
    public static unsafe KernelReadOutcome WaitAndRead(SafeHandle source, SafeHandle wakeup, Span<byte> buffer, int millisecondsTimeout, out int count, out global::Interop.ErrorInfo error)
    {
        count = 0;
        error = default;
        var fds = stackalloc global::Interop.Libc.PollFd[2];
        while (true)
        {
            fds[0] = new global::Interop.Libc.PollFd { Fd = (int)source.DangerousGetHandle(), Events = global::Interop.Libc.POLLIN };
            fds[1] = new global::Interop.Libc.PollFd { Fd = (int)wakeup.DangerousGetHandle(), Events = global::Interop.Libc.POLLIN };
            var ready = global::Interop.Libc.Poll(fds, 2, millisecondsTimeout);
            if (ready < 0)
            {
                error = global::Interop.ErrorInfo.Last();
                if (error.RawErrno == global::Interop.Errno.EINTR)
                {
                    continue;
                }

                return KernelReadOutcome.PollFailed;
            }

            if (fds[1].REvents != 0)
            {
                return KernelReadOutcome.WokenUp;
            }

            if (ready == 0)
            {
                return KernelReadOutcome.TimedOut;
            }

            if (fds[0].REvents == 0)
            {
                continue;
            }

            nint n;
            fixed (byte* p = buffer)
            {
                n = global::Interop.Libc.Read(source, p, (nuint)buffer.Length);
            }

            if (n > 0)
            {
                count = (int)n;
                return KernelReadOutcome.Data;
            }

            if (n == 0)
            {
                return KernelReadOutcome.End;
            }

            error = global::Interop.ErrorInfo.Last();
            if (error.RawErrno == global::Interop.Errno.EINTR || (error.RawErrno == global::Interop.Errno.EAGAIN && millisecondsTimeout == -1))
            {
                continue;
            }

            return error.RawErrno == global::Interop.Errno.EAGAIN ? KernelReadOutcome.TimedOut : KernelReadOutcome.ReadFailed;
        }
    }
}
