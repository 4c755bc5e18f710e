using OnAccess.Kernel;

namespace OnAccess.Fanotify;

/// <summary>A fanotify group's descriptor. Closing it makes the kernel allow every pending permission event.</summary>
internal sealed class SafeFanotifyHandle : SafeDescriptorHandle
{
    public SafeFanotifyHandle()
    {
    }

    public SafeFanotifyHandle(int fd)
        : base(fd)
    {
    }
}
