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
    internal const int F_SETFL = 4;
    internal const int AT_EMPTY_PATH = 0x1000;
    internal const uint STATX_BASIC_STATS = 0x7ff;
    internal const ushort S_IFMT = 0xF000;
    internal const ushort S_IFREG = 0x8000;

    /// <summary>The head of <c>struct statx</c> (the kernel's layout, the same on every architecture), padded to its size.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    internal struct StatXBuffer
    {
        [FieldOffset(0)]
        public uint Mask;

        [FieldOffset(16)]
        public uint NLink;

        [FieldOffset(20)]
        public uint Uid;

        [FieldOffset(28)]
        public ushort Mode;
    }

    /// <summary>open(2), for a log file root appends to: the flags say what may not be followed or waited for.</summary>
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SafeFileHandle Open(string path, int flags, uint mode);

    /// <summary>fcntl(2) with an int argument (F_SETFL).</summary>
    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(SafeFileHandle fd, int command, int argument);

    /// <summary>statx(2) of a descriptor (AT_EMPTY_PATH and an empty path).</summary>
    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int StatX(SafeFileHandle fd, string path, int flags, uint mask, out StatXBuffer buffer);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    internal static partial uint GetEuid();
}
