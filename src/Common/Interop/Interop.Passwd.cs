using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>
        /// <code>
        /// struct passwd { char *pw_name; char *pw_passwd; uid_t pw_uid; gid_t pw_gid; char *pw_gecos; char *pw_dir; char *pw_shell; };
        /// </code>
        /// Pointers as nint keep the layout right on 32- and 64-bit.
        /// </summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct Passwd
        {
            public nint Name;
            public nint Password;
            public uint Uid;
            public uint Gid;
            public nint Gecos;
            public nint Dir;
            public nint Shell;
        }

        [LibraryImport(Libraries.Libc, EntryPoint = "getpwnam_r", StringMarshalling = StringMarshalling.Utf8)]
        private static unsafe partial int GetPwNamR(string name, Passwd* pwd, byte* buffer, nuint bufferLength, Passwd** result);

        /// <summary>The UID of a user name through NSS (getpwnam_r), or null when there is no such user.</summary>
        internal static unsafe uint? GetUserId(string name)
        {
            var length = 1024;
            while (true)
            {
                var buffer = new byte[length];
                Passwd pwd;
                Passwd* result;
                int rc;
                fixed (byte* b = buffer)
                {
                    rc = GetPwNamR(name, &pwd, b, (nuint)length, &result);
                }

                if (rc == Errno.ERANGE && length < 1 << 20)
                {
                    length *= 4;
                    continue;
                }

                return rc == 0 && result != null ? pwd.Uid : null;
            }
        }
    }
}
