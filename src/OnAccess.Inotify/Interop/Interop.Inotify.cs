using System.Runtime.InteropServices;
using OnAccess.Kernel;

internal static partial class Interop
{
    /// <summary>inotify(7) constants under their native names (sys/inotify.h).</summary>
    internal static class InotifyConstants
    {
        internal const uint IN_ACCESS = 0x00000001;
        internal const uint IN_MODIFY = 0x00000002;
        internal const uint IN_ATTRIB = 0x00000004;
        internal const uint IN_CLOSE_WRITE = 0x00000008;
        internal const uint IN_CLOSE_NOWRITE = 0x00000010;
        internal const uint IN_OPEN = 0x00000020;
        internal const uint IN_MOVED_FROM = 0x00000040;
        internal const uint IN_MOVED_TO = 0x00000080;
        internal const uint IN_CREATE = 0x00000100;
        internal const uint IN_DELETE = 0x00000200;
        internal const uint IN_DELETE_SELF = 0x00000400;
        internal const uint IN_MOVE_SELF = 0x00000800;
        internal const uint IN_UNMOUNT = 0x00002000;
        internal const uint IN_Q_OVERFLOW = 0x00004000;
        internal const uint IN_IGNORED = 0x00008000;
        internal const uint IN_ONLYDIR = 0x01000000;
        internal const uint IN_DONT_FOLLOW = 0x02000000;
        internal const uint IN_EXCL_UNLINK = 0x04000000;
        internal const uint IN_MASK_ADD = 0x20000000;
        internal const uint IN_ISDIR = 0x40000000;
        internal const uint IN_ONESHOT = 0x80000000;
        internal const int IN_CLOEXEC = 0x80000;
        internal const int IN_NONBLOCK = 0x800;
    }

    /// <summary>
    /// <code>
    /// struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[]; };  // 16 bytes + len
    /// </code>
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct InotifyEvent
    {
        public int Wd;
        public uint Mask;
        public uint Cookie;
        public uint Len;
    }

    internal static partial class Inotify
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "inotify_init1", SetLastError = true)]
        internal static partial int Init1(int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "inotify_add_watch", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int AddWatch(SafeDescriptorHandle fd, string path, uint mask);

        [LibraryImport(Libraries.Libc, EntryPoint = "inotify_rm_watch", SetLastError = true)]
        internal static partial int RemoveWatch(SafeDescriptorHandle fd, int wd);
    }
}
