using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ConsoleMonitor;

internal static partial class Interop
{
    internal const int O_WRONLY = 0x1;
    internal const int O_CREAT = 0x40;
    internal const int O_APPEND = 0x400;
    internal const int O_NONBLOCK = 0x800;
    internal const int O_NOFOLLOW = 0x20000;
    internal const int O_CLOEXEC = 0x80000;

    /// <summary>open(2), for a log file root appends to: the flags say what may not be followed or waited for.</summary>
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SafeFileHandle Open(string path, int flags, uint mode);
}
