using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>Room for <c>struct statfs</c> (120 bytes on 64-bit Linux); its first field is <c>f_type</c>, a word.</summary>
        internal const int StatfsSize = 256;

        [LibraryImport(Libraries.Libc, EntryPoint = "fstatfs", SetLastError = true)]
        internal static unsafe partial int FStatFs(SafeHandle fd, byte* buffer);
    }
}
