using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const int SIG_BLOCK = 0;
        internal const int SIGIO = 29;
        internal const int SFD_CLOEXEC = 0x80000;
        internal const int SFD_NONBLOCK = 0x800;

        /// <summary>glibc's sigset_t: 1,024 bits (the kernel reads the first 64).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct SigSet
        {
            public fixed ulong Bits[16];

            public void Add(int signal) => Bits[(signal - 1) / 64] |= 1UL << ((signal - 1) % 64);
        }

        /// <summary>
        /// <code>
        /// struct signalfd_siginfo { uint32_t ssi_signo; int32_t ssi_errno; int32_t ssi_code; uint32_t ssi_pid;
        ///                           uint32_t ssi_uid; int32_t ssi_fd; uint32_t ssi_tid; uint32_t ssi_band; ... };  // 128 bytes
        /// </code>
        /// </summary>
        internal const int SignalFdInfoSize = 128;
        internal const int SignalFdInfoFdOffset = 20;

        [LibraryImport(Libraries.Libc, EntryPoint = "pthread_sigmask")]
        internal static unsafe partial int PthreadSigmask(int how, SigSet* set, SigSet* old);

        [LibraryImport(Libraries.Libc, EntryPoint = "signalfd", SetLastError = true)]
        internal static unsafe partial int SignalFd(int fd, SigSet* mask, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "__libc_current_sigrtmax")]
        internal static partial int CurrentSigRtMax();
    }
}
