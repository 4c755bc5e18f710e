using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace OnAccess.Fanotify;

/// <summary>
/// Who accessed a file, read as soon as the event is read and only from what pins that very process: the pidfd the
/// kernel reports with the event (PIDFD_GET_INFO, Linux 6.13; before that, procfs checked against the pidfd), or, for
/// a held access without pidfd reporting, procfs while the process waits for the answer (its ID cannot be reused
/// then). A process already reaped when its event is read is unknown (<see langword="null"/>), never guessed from a
/// process ID that may name another process by then.
/// </summary>
internal static class ProcessIdentity
{
    public static uint? EffectiveUid(FanotifyEvent e)
    {
        if (e.ProcessFd is { IsClosed: false } pidfd)
        {
            try
            {
                var uid = Interop.Libc.GetPidfdEffectiveUid(pidfd, out var errno);
                if (uid is not null || errno is not (Interop.Errno.ENOTTY or Interop.Errno.EINVAL))
                {
                    return uid; // ESRCH: reaped
                }

                var fromProc = StatusEffectiveUid(e.ProcessId);
                return fromProc is not null && IsAlive(pidfd) ? fromProc : null;
            }
            catch (ObjectDisposedException)
            {
                // released meanwhile: as below
            }
        }

        // Without a pidfd: a held process waits for our answer, so its process ID is its own until we answer.
        return e.ProcessExited || e.ProcessId <= 0 || (!e.IsPermissionRequest && e.ProcessFd is not null) ? null : StatusEffectiveUid(e.ProcessId);
    }

    /// <summary>The effective UID from the second field of the "Uid:" line of /proc/PID/status, or null if the process is gone.</summary>
    public static uint? StatusEffectiveUid(int pid)
    {
        Span<byte> buffer = stackalloc byte[2048];
        int read;
        try
        {
            using var handle = File.OpenHandle("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/status");
            read = RandomAccess.Read(handle, buffer, 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var text = buffer[..read];
        var at = text.IndexOf("\nUid:"u8);
        if (at < 0)
        {
            return null;
        }

        var line = text[(at + 5)..];
        var end = line.IndexOf((byte)'\n');
        line = end < 0 ? line : line[..end];
        var fields = Encoding.ASCII.GetString(line).Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
        return fields.Length > 1 && uint.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var euid) ? euid : null;
    }

    /// <summary>Whether the process a pidfd holds has not exited (a pidfd becomes readable when it does).</summary>
    private static unsafe bool IsAlive(SafeHandle pidfd)
    {
        var added = false;
        try
        {
            pidfd.DangerousAddRef(ref added);
            var poll = new Interop.Libc.PollFd { Fd = (int)pidfd.DangerousGetHandle(), Events = Interop.Libc.POLLIN };
            return Interop.Libc.Poll(&poll, 1, 0) == 0;
        }
        finally
        {
            if (added)
            {
                pidfd.DangerousRelease();
            }
        }
    }
}
