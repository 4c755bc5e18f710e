using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        // x86 and x86-64 keep the historical values; every other Linux architecture .NET runs on uses asm-generic's.
        private static readonly bool X86 = RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86;

        internal const int O_WRONLY = 0x1;
        internal const int O_RDWR = 0x2;
        internal const int O_PATH = 0x200000;
        internal static readonly int O_DIRECTORY = X86 ? 0x10000 : 0x4000;
        internal static readonly int O_NOFOLLOW = X86 ? 0x20000 : 0x8000;

        internal const int F_DUPFD_CLOEXEC = 1030;
        internal const int F_SETSIG = 10;
        internal const int F_SETOWN_EX = 15;
        internal const int F_SETLEASE = 1024;
        internal const int F_GETLEASE = 1025;
        internal const int F_RDLCK = 0;
        internal const int F_UNLCK = 2;
        internal const int F_OWNER_TID = 0;

        internal const byte DT_UNKNOWN = 0;
        internal const byte DT_DIR = 4;
        internal const byte DT_REG = 8;
        internal const byte DT_LNK = 10;

        internal const int MAX_HANDLE_SZ = 128;
        internal const ulong STATX_ATTR_MOUNT_ROOT = 0x2000;

        /// <summary>
        /// <code>struct file_handle { unsigned int handle_bytes; int handle_type; unsigned char f_handle[]; };</code>
        /// followed here by room for MAX_HANDLE_SZ bytes.
        /// </summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct FileHandle
        {
            public uint HandleBytes;
            public int HandleType;
            public fixed byte Bytes[MAX_HANDLE_SZ];
        }

        /// <summary><code>struct f_owner_ex { int type; pid_t pid; };</code></summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct OwnerEx
        {
            public int Type;
            public int Pid;
        }

        /// <summary>
        /// <code>
        /// struct linux_dirent64 { ino64_t d_ino; off64_t d_off; unsigned short d_reclen; unsigned char d_type; char d_name[]; };
        /// </code>
        /// d_name starts at offset 19.
        /// </summary>
        internal const int DirentNameOffset = 19;

        [LibraryImport(Libraries.Libc, EntryPoint = "openat", SetLastError = true)]
        internal static unsafe partial int OpenAt(SafeHandle dirFd, byte* path, int flags, uint mode);

        [LibraryImport(Libraries.Libc, EntryPoint = "openat", SetLastError = true)]
        internal static unsafe partial int OpenAt(int dirFd, byte* path, int flags, uint mode);

        [LibraryImport(Libraries.Libc, EntryPoint = "getdents64", SetLastError = true)]
        internal static unsafe partial nint GetDents64(SafeHandle fd, byte* buffer, nuint count);

        [LibraryImport(Libraries.Libc, EntryPoint = "name_to_handle_at", SetLastError = true)]
        internal static unsafe partial int NameToHandleAt(SafeHandle dirFd, byte* path, FileHandle* handle, int* mountId, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "open_by_handle_at", SetLastError = true)]
        internal static unsafe partial int OpenByHandleAt(SafeHandle mountFd, FileHandle* handle, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "statx", SetLastError = true)]
        internal static unsafe partial int StatxAt(SafeHandle dirFd, byte* path, int flags, uint mask, Statx* buffer);

        [LibraryImport(Libraries.Libc, EntryPoint = "fcntl", SetLastError = true)]
        internal static partial int Fcntl(SafeHandle fd, int command, int argument);

        [LibraryImport(Libraries.Libc, EntryPoint = "fcntl", SetLastError = true)]
        internal static unsafe partial int Fcntl(SafeHandle fd, int command, OwnerEx* argument);

        [LibraryImport(Libraries.Libc, EntryPoint = "fcntl", SetLastError = true)]
        internal static partial int Fcntl(nint fd, int command, int argument);

        [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
        internal static unsafe partial int Ioctl(SafeHandle fd, nuint request, void* argument);

        internal const int O_CREAT = 0x40;
        internal const int O_EXCL = 0x80;
        internal const uint RENAME_NOREPLACE = 1;
        internal const uint RENAME_EXCHANGE = 2;

        [LibraryImport(Libraries.Libc, EntryPoint = "renameat2", SetLastError = true)]
        internal static unsafe partial int RenameAt2(SafeHandle oldDirFd, byte* oldPath, SafeHandle newDirFd, byte* newPath, uint flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "unlinkat", SetLastError = true)]
        internal static unsafe partial int UnlinkAt(SafeHandle dirFd, byte* path, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "fchown", SetLastError = true)]
        internal static partial int FChown(SafeHandle fd, uint owner, uint group);

        [LibraryImport(Libraries.Libc, EntryPoint = "fchmod", SetLastError = true)]
        internal static partial int FChmod(SafeHandle fd, uint mode);

        [LibraryImport(Libraries.Libc, EntryPoint = "fsync", SetLastError = true)]
        internal static partial int FSync(SafeHandle fd);

        [LibraryImport(Libraries.Libc, EntryPoint = "geteuid")]
        internal static partial uint GetEuid();

        [LibraryImport(Libraries.Libc, EntryPoint = "gettid")]
        internal static partial int GetTid();

        internal const int RLIMIT_NOFILE = 7;

        /// <summary><code>struct rlimit { rlim_t rlim_cur; rlim_t rlim_max; };</code></summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct RLimit
        {
            public ulong Current;
            public ulong Maximum;
        }

        [LibraryImport(Libraries.Libc, EntryPoint = "getrlimit", SetLastError = true)]
        internal static unsafe partial int GetRLimit(int resource, RLimit* limit);

        /// <summary>How many descriptors this process may have open (RLIMIT_NOFILE's soft limit); 1,024 when it cannot be read.</summary>
        internal static unsafe ulong GetOpenFileLimit()
        {
            RLimit limit;
            return GetRLimit(RLIMIT_NOFILE, &limit) == 0 ? limit.Current : 1024;
        }

        /// <summary><c>struct open_how { __u64 flags; __u64 mode; __u64 resolve; }</c> (openat2).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct OpenHow
        {
            public ulong Flags;
            public ulong Mode;
            public ulong Resolve;
        }

        internal const ulong RESOLVE_NO_XDEV = 0x01, RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_NO_SYMLINKS = 0x04, RESOLVE_BENEATH = 0x08;

        /// <summary>openat2's number: 437 on every architecture (new system calls share one table since 5.1).</summary>
        private const long SYS_openat2 = 437;

        [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
        private static unsafe partial long Syscall(long number, int dirFd, byte* path, OpenHow* how, nuint size);

        /// <summary>openat2(2) (Linux 5.6; glibc has no wrapper before 2.39): an open whose walk the caller bounds with RESOLVE_* flags.</summary>
        internal static unsafe int OpenAt2(SafeHandle dirFd, byte* path, int flags, ulong resolve)
        {
            var added = false;
            try
            {
                dirFd.DangerousAddRef(ref added);
                var how = new OpenHow { Flags = (ulong)(uint)flags, Resolve = resolve };
                return (int)Syscall(SYS_openat2, (int)dirFd.DangerousGetHandle(), path, &how, (nuint)sizeof(OpenHow));
            }
            finally
            {
                if (added)
                {
                    dirFd.DangerousRelease();
                }
            }
        }
    }
}
