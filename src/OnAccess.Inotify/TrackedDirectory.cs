using System.Runtime.InteropServices;
using System.Text;

namespace OnAccess.Inotify;

/// <summary>A directory handed to an <see cref="IDirectoryTreeHandler"/>.</summary>
public sealed class TrackedDirectory
{
    private readonly Func<byte[]> _path;

    internal TrackedDirectory(SafeHandle descriptor, ulong device, ulong inode, Func<byte[]> path)
    {
        Descriptor = descriptor;
        Device = device;
        Inode = inode;
        _path = path;
    }

    /// <summary>A read-only descriptor of the directory (O_DIRECTORY), valid during the call only; do not dispose it.</summary>
    public SafeHandle Descriptor { get; }

    /// <summary>The device the directory lives on (st_dev).</summary>
    public ulong Device { get; }

    /// <summary>The directory's inode number.</summary>
    public ulong Inode { get; }

    /// <summary>The path the tree knows the directory by (for messages; it may have changed since), as the kernel's bytes.</summary>
    /// <returns>The path's bytes (not necessarily UTF-8).</returns>
    public byte[] GetRawPath() => _path();

    /// <summary>The path the tree knows the directory by, for messages (bytes that are not UTF-8 shown as U+FFFD).</summary>
    /// <returns>The path.</returns>
    public string GetPath() => Encoding.UTF8.GetString(_path());
}
