using System.Runtime.InteropServices;

namespace OnAccess.Tests;

/// <summary>
/// Capabilities of the calling thread only (capget/capset act on one thread): a test drops one from a thread of its
/// own, runs what must fail without it there, and lets the thread end.
/// </summary>
internal static partial class ThreadCapabilities
{
    public const int CAP_SYS_ADMIN = 21;

    private const uint LinuxCapabilityVersion3 = 0x20080522;

    /// <summary>Removes <paramref name="capability"/> from the calling thread's effective set.</summary>
    public static void DropEffective(int capability)
    {
        var header = new CapHeader { Version = LinuxCapabilityVersion3, Pid = 0 };
        var data = new CapData[2];
        if (CapGet(ref header, data) != 0)
        {
            throw new InvalidOperationException($"capget failed: errno {Marshal.GetLastPInvokeError()}");
        }

        data[capability / 32].Effective &= ~(1u << (capability % 32));
        if (CapSet(ref header, data) != 0)
        {
            throw new InvalidOperationException($"capset failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader
    {
        public uint Version;
        public int Pid;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData
    {
        public uint Effective;
        public uint Permitted;
        public uint Inheritable;
    }

    [LibraryImport("libc", EntryPoint = "capget", SetLastError = true)]
    private static partial int CapGet(ref CapHeader header, [In, Out] CapData[] data);

    [LibraryImport("libc", EntryPoint = "capset", SetLastError = true)]
    private static partial int CapSet(ref CapHeader header, [In] CapData[] data);
}
