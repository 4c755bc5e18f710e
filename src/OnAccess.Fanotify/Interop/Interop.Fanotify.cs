using System.Runtime.InteropServices;
using OnAccess.Fanotify;

internal static partial class Interop
{
    /// <summary>fanotify(7) constants under their native names (linux/fanotify.h); the public API never shows them.</summary>
    internal static class FanotifyConstants
    {
        // fanotify_init flags
        internal const uint FAN_CLOEXEC = 0x00000001;
        internal const uint FAN_NONBLOCK = 0x00000002;
        internal const uint FAN_CLASS_NOTIF = 0x00000000;
        internal const uint FAN_CLASS_CONTENT = 0x00000004;
        internal const uint FAN_CLASS_PRE_CONTENT = 0x00000008;
        internal const uint FAN_UNLIMITED_QUEUE = 0x00000010;
        internal const uint FAN_UNLIMITED_MARKS = 0x00000020;
        internal const uint FAN_ENABLE_AUDIT = 0x00000040;
        internal const uint FAN_REPORT_PIDFD = 0x00000080;    // since Linux 5.15
        internal const uint FAN_REPORT_TID = 0x00000100;
        internal const uint FAN_REPORT_FID = 0x00000200;      // since Linux 5.1
        internal const uint FAN_REPORT_DIR_FID = 0x00000400;  // since Linux 5.9
        internal const uint FAN_REPORT_NAME = 0x00000800;     // since Linux 5.9
        internal const uint FAN_REPORT_DFID_NAME = FAN_REPORT_DIR_FID | FAN_REPORT_NAME;

        // fanotify_mark flags
        internal const uint FAN_MARK_ADD = 0x00000001;
        internal const uint FAN_MARK_REMOVE = 0x00000002;
        internal const uint FAN_MARK_DONT_FOLLOW = 0x00000004;
        internal const uint FAN_MARK_ONLYDIR = 0x00000008;
        internal const uint FAN_MARK_MOUNT = 0x00000010;
        internal const uint FAN_MARK_IGNORED_MASK = 0x00000020;
        internal const uint FAN_MARK_IGNORED_SURV_MODIFY = 0x00000040;
        internal const uint FAN_MARK_FLUSH = 0x00000080;
        internal const uint FAN_MARK_FILESYSTEM = 0x00000100; // since Linux 4.20
        internal const uint FAN_MARK_EVICTABLE = 0x00000200;  // since Linux 5.19
        internal const uint FAN_MARK_IGNORE = 0x00000400;     // since Linux 6.0
        internal const uint FAN_MARK_INODE = 0x00000000;

        // event mask bits that are not events
        internal const ulong FAN_EVENT_ON_CHILD = 0x08000000;
        internal const ulong FAN_ONDIR = 0x40000000;
        internal const ulong FAN_Q_OVERFLOW = 0x00004000;
        internal const ulong AllPermissionEvents = 0x00010000 | 0x00020000 | 0x00040000;

        // records and responses
        internal const byte FANOTIFY_METADATA_VERSION = 3;
        internal const int FAN_NOFD = -1;
        internal const int FAN_NOPIDFD = -1;
        internal const int FAN_EPIDFD = -2;
        internal const byte FAN_EVENT_INFO_TYPE_FID = 1;
        internal const byte FAN_EVENT_INFO_TYPE_DFID_NAME = 2;
        internal const byte FAN_EVENT_INFO_TYPE_DFID = 3;
        internal const byte FAN_EVENT_INFO_TYPE_PIDFD = 4;
        internal const byte FAN_EVENT_INFO_TYPE_ERROR = 5;
        internal const uint FAN_ALLOW = 0x01;
        internal const uint FAN_DENY = 0x02;
        internal const uint FAN_AUDIT = 0x10;
    }

    /// <summary>
    /// <code>
    /// struct fanotify_event_metadata {
    ///     __u32 event_len; __u8 vers; __u8 reserved; __u16 metadata_len;
    ///     __aligned_u64 mask; __s32 fd; __s32 pid;
    /// };  // 24 bytes on every architecture
    /// </code>
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct FanotifyEventMetadata
    {
        public uint EventLen;
        public byte Vers;
        public byte Reserved;
        public ushort MetadataLen;
        public ulong Mask;
        public int Fd;
        public int Pid;
    }

    /// <summary>
    /// <code>
    /// struct fanotify_event_info_header { __u8 info_type; __u8 pad; __u16 len; };  // 4 bytes
    /// </code>
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct FanotifyEventInfoHeader
    {
        public byte InfoType;
        public byte Pad;
        public ushort Len;
    }

    /// <summary>
    /// <code>
    /// struct fanotify_response { __s32 fd; __u32 response; };  // 8 bytes
    /// </code>
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct FanotifyResponse
    {
        public int Fd;
        public uint Response;
    }

    internal static partial class Fanotify
    {
        [LibraryImport(Libraries.Libc, EntryPoint = "fanotify_init", SetLastError = true)]
        internal static partial int Init(uint flags, uint eventFileFlags);

        [LibraryImport(Libraries.Libc, EntryPoint = "fanotify_mark", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Mark(SafeFanotifyHandle fd, uint flags, ulong mask, int dirFd, string? path);

        [LibraryImport(Libraries.Libc, EntryPoint = "fanotify_mark", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Mark(SafeFanotifyHandle fd, uint flags, ulong mask, SafeHandle dirFd, string? path);

        internal const int AT_FDCWD = -100;
    }
}
