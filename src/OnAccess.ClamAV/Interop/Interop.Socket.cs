using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const int SOL_SOCKET = 1;
        internal const int SO_PEERCRED = 17;
        internal const int SCM_RIGHTS = 1;
        internal const int MSG_NOSIGNAL = 0x4000;

        /// <summary>
        /// <code>
        /// struct iovec { void *iov_base; size_t iov_len; };
        /// </code>
        /// </summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct IoVec
        {
            public byte* Base;
            public nuint Length;
        }

        /// <summary>
        /// <code>
        /// struct msghdr { void *msg_name; socklen_t msg_namelen; struct iovec *msg_iov; size_t msg_iovlen;
        ///                 void *msg_control; size_t msg_controllen; int msg_flags; };
        /// </code>
        /// size_t and pointers as nuint/pointers keep the layout right on 32- and 64-bit.
        /// </summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct MsgHdr
        {
            public void* Name;
            public uint NameLength;
            public IoVec* Iov;
            public nuint IovLength;
            public void* Control;
            public nuint ControlLength;
            public int Flags;
        }

        /// <summary>
        /// <code>
        /// struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; unsigned char cmsg_data[]; };
        /// </code>
        /// </summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct CMsgHdr
        {
            public nuint Length;
            public int Level;
            public int Type;
        }

        /// <summary><code>struct ucred { pid_t pid; uid_t uid; gid_t gid; };</code></summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct UCred
        {
            public int Pid;
            public uint Uid;
            public uint Gid;
        }

        [LibraryImport(Libraries.Libc, EntryPoint = "getsockopt", SetLastError = true)]
        internal static unsafe partial int GetSockOpt(SafeHandle socket, int level, int name, void* value, uint* length);

        /// <summary>The credentials of the process at the other end of a connected unix socket (SO_PEERCRED), from when it connected or listened.</summary>
        internal static unsafe UCred? GetPeerCredentials(SafeHandle socket)
        {
            UCred credentials;
            var length = (uint)sizeof(UCred);
            return GetSockOpt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 ? credentials : null;
        }

        [LibraryImport(Libraries.Libc, EntryPoint = "sendmsg", SetLastError = true)]
        internal static unsafe partial nint SendMsg(SafeHandle socket, MsgHdr* message, int flags);

        /// <summary>
        /// Sends one byte with a descriptor attached (SCM_RIGHTS), as clamd's FILDES command expects. The socket is
        /// non-blocking: EAGAIN (clamd reads nothing, its buffer full) is returned, never spun on.
        /// </summary>
        internal static unsafe ErrorInfo? SendDescriptor(SafeHandle socket, SafeHandle descriptor)
        {
            var added = false;
            try
            {
                descriptor.DangerousAddRef(ref added);
                var fd = (int)descriptor.DangerousGetHandle();
                byte payload = 0;
                var iov = new IoVec { Base = &payload, Length = 1 };
                var header = sizeof(CMsgHdr);
                var align = (nuint)sizeof(nuint);
                var space = ((nuint)header + sizeof(int) + align - 1) & ~(align - 1);
                var control = stackalloc byte[(int)space];
                new Span<byte>(control, (int)space).Clear();
                var cmsg = (CMsgHdr*)control;
                cmsg->Length = (nuint)header + sizeof(int);
                cmsg->Level = SOL_SOCKET;
                cmsg->Type = SCM_RIGHTS;
                *(int*)(control + header) = fd;
                var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = space };
                while (true)
                {
                    if (SendMsg(socket, &message, MSG_NOSIGNAL) >= 0)
                    {
                        return null;
                    }

                    var error = ErrorInfo.Last();
                    if (error.RawErrno != Errno.EINTR)
                    {
                        return error; // EAGAIN included: the caller waits for room, within its deadline
                    }
                }
            }
            finally
            {
                if (added)
                {
                    descriptor.DangerousRelease();
                }
            }
        }
    }
}
