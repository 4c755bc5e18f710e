using System.Runtime.InteropServices;

namespace OnAccess.Kernel;

/// <summary>A Linux file descriptor owned by a SafeHandle: -1 is invalid, 0 is a valid descriptor, close on release.</summary>
internal class SafeDescriptorHandle : SafeHandle
{
    public SafeDescriptorHandle()
        : base(new IntPtr(-1), ownsHandle: true)
    {
    }

    public SafeDescriptorHandle(int fd, bool ownsHandle = true)
        : base(new IntPtr(-1), ownsHandle) => SetHandle(new IntPtr(fd));

    public override bool IsInvalid => (long)handle is < 0 or > int.MaxValue;

    /// <summary>The descriptor number, for diagnostics and for APIs that identify an object by it.</summary>
    public int Number => (int)handle;

    protected override bool ReleaseHandle() => global::Interop.Libc.Close(handle) == 0;
}
