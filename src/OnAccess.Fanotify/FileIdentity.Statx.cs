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
        if (Interop.Libc.StatxFd(file, string.Empty, Interop.Libc.AT_EMPTY_PATH, Interop.Libc.STATX_BASIC_STATS | Interop.Libc.STATX_MNT_ID, &statx) != 0)
        {
            throw Interop.GetExceptionForError(Interop.ErrorInfo.Last(), "statx of an open file");
        }

        return new FileIdentity(
            Interop.Libc.MakeDev(statx.DevMajor, statx.DevMinor),
            statx.Ino,
            (long)statx.Size,
            statx.Mode,
            statx.Uid,
            (statx.MTime.Sec * 1_000_000_000L) + statx.MTime.Nsec,
            (statx.CTime.Sec * 1_000_000_000L) + statx.CTime.Nsec)
        {
            LinkCount = statx.NLink,
            MountId = (statx.Mask & Interop.Libc.STATX_MNT_ID) != 0 ? statx.MountId : 0,
        };
    }

    /// <summary>The path an open descriptor refers to, from <c>readlink("/proc/self/fd/N")</c>; for display only.</summary>
    /// <param name="file">An open descriptor.</param>
    /// <returns>The path decoded as UTF-8 (bytes that are not become U+FFFD; <see cref="RawPathOf"/> has them exactly),
    /// ending in " (deleted)" for an unlinked file, or <see langword="null"/> when it cannot be read.</returns>
    public static string? PathOf(SafeHandle file) => RawPathOf(file) is { } raw ? Encoding.UTF8.GetString(raw) : null;

    /// <summary>The path an open descriptor refers to, as the kernel's bytes (a name need not be UTF-8); for display only.</summary>
    /// <param name="file">An open descriptor.</param>
    /// <returns>The bytes, or <see langword="null"/> when the link cannot be read (for example a path longer than PATH_MAX).</returns>
    public static unsafe byte[]? RawPathOf(SafeHandle file)
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
            return n <= 0 || n >= PathMax ? null : new ReadOnlySpan<byte>(buffer, (int)n).ToArray();
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }
}
