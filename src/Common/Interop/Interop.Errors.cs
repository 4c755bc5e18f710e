using System.Runtime.InteropServices;

internal static partial class Interop
{
    /// <summary>errno values this code tests for (Linux, every architecture).</summary>
    internal static class Errno
    {
        internal const int EPERM = 1;
        internal const int ENOENT = 2;
        internal const int EINTR = 4;
        internal const int EBADF = 9;
        internal const int EFAULT = 14;
        internal const int EAGAIN = 11;
        internal const int ENOMEM = 12;
        internal const int EACCES = 13;
        internal const int EEXIST = 17;
        internal const int EXDEV = 18;
        internal const int ENODEV = 19;
        internal const int ENOTDIR = 20;
        internal const int EINVAL = 22;
        internal const int ERANGE = 34;
        internal const int ENFILE = 23;
        internal const int EMFILE = 24;
        internal const int ENOSPC = 28;
        internal const int ENOSYS = 38;
        internal const int ENAMETOOLONG = 36;
        internal const int ESRCH = 3;
        internal const int ENXIO = 6;
        internal const int ESTALE = 116;
        internal const int EBADMSG = 74;
        internal const int ENOTTY = 25;
        internal const int ELOOP = 40;
        internal const int EOVERFLOW = 75;
        internal const int EOPNOTSUPP = 95;
    }

    /// <summary>errno, captured immediately after the failing call, before anything else can overwrite it.</summary>
    internal readonly struct ErrorInfo
    {
        private ErrorInfo(int errno) => RawErrno = errno;

        public int RawErrno { get; }

        public static ErrorInfo Last() => new(Marshal.GetLastPInvokeError());

        public static ErrorInfo FromErrno(int errno) => new(errno);

        public string Message => Marshal.GetPInvokeErrorMessage(RawErrno);

        public override string ToString() => $"{Message} (errno {RawErrno})";
    }

    /// <summary>The one place errno becomes an exception. <paramref name="advice"/> says what to do, when known.</summary>
    internal static Exception GetExceptionForError(ErrorInfo error, string operation, string? path = null, string? advice = null)
    {
        var what = path is null ? operation : $"{operation} '{path}'";
        var message = $"{what} failed: {error}." + (advice is null ? string.Empty : " " + advice);
        return error.RawErrno switch
        {
            Errno.ENOENT when path is not null => new FileNotFoundException(message, path),
            Errno.ENOTDIR when path is not null => new DirectoryNotFoundException(message),
            Errno.EPERM or Errno.EACCES => new UnauthorizedAccessException(message, new IOException(error.Message, error.RawErrno)),
            Errno.ENOSYS or Errno.EOPNOTSUPP => new PlatformNotSupportedException(message),
            _ => new IOException(message, error.RawErrno),
        };
    }

    /// <summary>Reads a sysctl such as <c>/proc/sys/fs/inotify/max_user_watches</c> for an error message.</summary>
    internal static string ReadSysctl(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unknown";
        }
    }
}
