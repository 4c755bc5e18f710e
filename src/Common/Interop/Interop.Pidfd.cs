using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>
        /// PIDFD_GET_INFO = _IOWR(0xFF, 11, struct pidfd_info), with the 64-byte first version of the struct (Linux 6.13;
        /// newer than the C headers of the distributions this builds on, so computed here rather than checked there).
        /// </summary>
        internal static readonly uint PidfdGetInfo = (3u << 30) | ((uint)Unsafe.SizeOf<PidfdInfo>() << 16) | (0xFFu << 8) | 11u;

        /// <summary>PIDFD_INFO_CREDS: ask for (and, in the answer's mask, got) the credentials.</summary>
        internal static readonly ulong PidfdInfoCreds = 1UL << 1;

        /// <summary>
        /// <code>
        /// struct pidfd_info { __u64 mask; __u64 cgroupid; __u32 pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid,
        ///                     fsuid, fsgid; __u32 __spare0[1]; };  // 64 bytes (PIDFD_INFO_SIZE_VER0), Linux 6.13
        /// </code>
        /// </summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct PidfdInfo
        {
            public ulong Mask;
            public ulong CgroupId;
            public uint Pid;
            public uint Tgid;
            public uint Ppid;
            public uint Ruid;
            public uint Rgid;
            public uint Euid;
            public uint Egid;
            public uint Suid;
            public uint Sgid;
            public uint Fsuid;
            public uint Fsgid;
            public uint Spare0;
        }

        /// <summary>The effective UID of the process a pidfd holds, or null (it has been reaped, or the kernel predates 6.13: errno then).</summary>
        internal static unsafe uint? GetPidfdEffectiveUid(SafeHandle pidfd, out int errno)
        {
            var info = new PidfdInfo { Mask = PidfdInfoCreds };
            if (Ioctl(pidfd, PidfdGetInfo, &info) != 0)
            {
                errno = Marshal.GetLastPInvokeError();
                return null;
            }

            errno = 0;
            return (info.Mask & PidfdInfoCreds) != 0 ? info.Euid : null;
        }
    }
}
