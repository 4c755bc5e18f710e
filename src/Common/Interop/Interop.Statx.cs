using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const int AT_EMPTY_PATH = 0x1000;
        internal const int AT_SYMLINK_NOFOLLOW = 0x100;
        internal const int AT_FDCWD = -100;
        internal const uint STATX_BASIC_STATS = 0x000007ff;
        internal const uint STATX_INO = 0x100;
        internal const uint STATX_MNT_ID = 0x1000;
        internal const int AT_NO_AUTOMOUNT = 0x800;

        /// <summary>
        /// <code>
        /// struct statx_timestamp { __s64 tv_sec; __u32 tv_nsec; __s32 __reserved; };  // 16 bytes
        /// </code>
        /// </summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct StatxTimestamp
        {
            public long Sec;
            public uint Nsec;
            public int Reserved;
        }

        /// <summary>
        /// struct statx (linux/stat.h): the same 256-byte layout on every architecture, unlike struct stat, which is
        /// why the event file's identity comes from statx(fd, "", AT_EMPTY_PATH) rather than fstat.
        /// <code>
        /// struct statx {
        ///     __u32 stx_mask; __u32 stx_blksize; __u64 stx_attributes;                     //  0
        ///     __u32 stx_nlink; __u32 stx_uid; __u32 stx_gid; __u16 stx_mode; __u16 pad;     // 16
        ///     __u64 stx_ino; __u64 stx_size; __u64 stx_blocks; __u64 stx_attributes_mask;   // 32
        ///     struct statx_timestamp stx_atime, stx_btime, stx_ctime, stx_mtime;           // 64
        ///     __u32 stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;          // 128
        ///     __u64 stx_mnt_id; __u64 spare[13];                                           // 144
        /// };  // 256 bytes
        /// </code>
        /// </summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct Statx
        {
            public uint Mask;
            public uint BlkSize;
            public ulong Attributes;
            public uint NLink;
            public uint Uid;
            public uint Gid;
            public ushort Mode;
            public ushort Pad0;
            public ulong Ino;
            public ulong Size;
            public ulong Blocks;
            public ulong AttributesMask;
            public StatxTimestamp ATime;
            public StatxTimestamp BTime;
            public StatxTimestamp CTime;
            public StatxTimestamp MTime;
            public uint RDevMajor;
            public uint RDevMinor;
            public uint DevMajor;
            public uint DevMinor;
            public ulong MountId;
            public fixed ulong Spare[13];
        }

        [LibraryImport(Libraries.Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static unsafe partial int StatxFd(SafeHandle dirFd, string path, int flags, uint mask, Statx* buffer);

        [LibraryImport(Libraries.Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static unsafe partial int StatxPath(int dirFd, string path, int flags, uint mask, Statx* buffer);

        /// <summary>The file type bits of st_mode (S_IFMT) and the types tested against them.</summary>
        internal const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000, S_IFLNK = 0xA000, S_IFREG = 0x8000, S_IFDIR = 0x4000;

        /// <summary>
        /// A path's file type (its S_IFMT bits: compare with <see cref="S_IFDIR"/>, <see cref="S_IFSOCK"/>, ...), from one
        /// statx; a final symbolic link is followed only when <paramref name="followLinks"/>. Null, with the errno, when
        /// the path cannot be examined.
        /// </summary>
        internal static unsafe uint? GetFileType(string path, bool followLinks, out int errno)
        {
            Statx statx;
            if (StatxPath(AT_FDCWD, path, followLinks ? 0 : AT_SYMLINK_NOFOLLOW, 0x1 /* STATX_TYPE */, &statx) != 0)
            {
                errno = Marshal.GetLastPInvokeError();
                return null;
            }

            errno = 0;
            return statx.Mode & S_IFMT;
        }

        /// <summary>glibc's makedev: the dev_t layout st_dev uses on Linux.</summary>
        internal static ulong MakeDev(uint major, uint minor) =>
            ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0x00000fff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0x000000ff);

        /// <summary>The owner UID of a path (one statx call), or null when it cannot be read.</summary>
        internal static unsafe uint? GetOwnerUid(string path)
        {
            Statx statx;
            return StatxPath(AT_FDCWD, path, 0, 0x8 /* STATX_UID */, &statx) == 0 ? statx.Uid : null;
        }
    }
}
