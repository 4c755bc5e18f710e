using System.Runtime.InteropServices;
using System.Text;

namespace OnAccess.Fanotify;

public readonly partial record struct FileIdentity
{
    /// <summary>Reads the identity of an open file with <c>statx(fd, "", AT_EMPTY_PATH)</c>: no path, no reopen.</summary>
    /// <param name="file">An open descriptor.</param>
    /// <returns>The file's identity now.</returns>
    /// <exception cref="IOException">statx failed.</exception>
    public static unsafe FileIdentity Of(SafeHandle file)
    {
        ArgumentNullException.ThrowIfNull(file);
        Interop.Libc.Statx statx;
        if (Interop.Libc.StatxFd(file, string.Empty, Interop.Libc.AT_EMPTY_PATH, Interop.Libc.STATX_BASIC_STATS, &statx) != 0)
        {
            throw Interop.GetExceptionForError(Interop.ErrorInfo.Last(), "statx of an open file");
        }

        return new FileIdentity(
            MakeDev(statx.DevMajor, statx.DevMinor),
            statx.Ino,
            (long)statx.Size,
            statx.Mode,
            statx.Uid,
            (statx.MTime.Sec * 1_000_000_000L) + statx.MTime.Nsec,
            (statx.CTime.Sec * 1_000_000_000L) + statx.CTime.Nsec);
    }

    /// <summary>The path an open descriptor refers to, from <c>readlink("/proc/self/fd/N")</c>; for display only.</summary>
    /// <param name="file">An open descriptor.</param>
    /// <returns>The path (ending in " (deleted)" for an unlinked file), or <see langword="null"/> when it cannot be read.</returns>
    public static unsafe string? PathOf(SafeHandle file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var added = false;
        try
        {
            file.DangerousAddRef(ref added);
            var link = "/proc/self/fd/" + ((int)file.DangerousGetHandle()).ToString(System.Globalization.CultureInfo.InvariantCulture);
            const int PathMax = 4096;
            var buffer = stackalloc byte[PathMax];
            var n = Interop.Libc.ReadLink(link, buffer, PathMax);
            return n <= 0 ? null : Encoding.UTF8.GetString(buffer, (int)n);
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    // glibc's makedev: the layout dev_t uses on Linux.
    private static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0x00000fff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0x000000ff);
}
