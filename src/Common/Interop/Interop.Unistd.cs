using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const int POLLIN = 0x001;
        internal const int POLLPRI = 0x002;
        internal const int POLLERR = 0x008;
        internal const int EFD_CLOEXEC = 0x80000;
        internal const int EFD_NONBLOCK = 0x800;
        internal const int O_RDONLY = 0x0;
        internal const int O_CLOEXEC = 0x80000;
        internal const int O_NONBLOCK = 0x800;
        internal const int O_NOCTTY = 0x100;

        /// <summary>
        /// <code>struct pollfd { int fd; short events; short revents; };</code>
        /// </summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct PollFd
        {
            public int Fd;
            public short Events;
            public short REvents;
        }

        [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Open(string path, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "read", SetLastError = true)]
        internal static unsafe partial nint Read(SafeHandle fd, byte* buffer, nuint count);

        [LibraryImport(Libraries.Libc, EntryPoint = "write", SetLastError = true)]
        internal static unsafe partial nint Write(SafeHandle fd, byte* buffer, nuint count);

        [LibraryImport(Libraries.Libc, EntryPoint = "close", SetLastError = true)]
        internal static partial int Close(nint fd);

        [LibraryImport(Libraries.Libc, EntryPoint = "poll", SetLastError = true)]
        internal static unsafe partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

        [LibraryImport(Libraries.Libc, EntryPoint = "eventfd", SetLastError = true)]
        internal static partial int EventFd(uint initialValue, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static unsafe partial nint ReadLink(string path, byte* buffer, nuint size);

        /// <summary>write(2) of a whole small buffer, retried on EINTR.</summary>
        internal static unsafe ErrorInfo? WriteAll(SafeHandle fd, ReadOnlySpan<byte> data)
        {
            fixed (byte* p = data)
            {
                while (true)
                {
                    var n = Write(fd, p, (nuint)data.Length);
                    if (n >= 0)
                    {
                        return null;
                    }

                    var error = ErrorInfo.Last();
                    if (error.RawErrno != Errno.EINTR)
                    {
                        return error;
                    }
                }
            }
        }
    }
}
