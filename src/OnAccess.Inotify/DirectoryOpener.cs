using System.Runtime.InteropServices;
using OnAccess.Kernel;

namespace OnAccess.Inotify;

/// <summary>
/// The directories opened while one batch is applied, and one open directory per device to decode file handles
/// against: a tracked directory found again wherever it is, by its file handle or through its parent by name, and
/// checked against its device, inode and handle. Closed at the end of each batch: nothing here pins a mount.
/// </summary>
internal sealed class DirectoryOpener
{
    /// <summary>Directories opened while one batch is applied; closed when it ends, or when there get to be this many.</summary>
    private const int OpenDirectoriesLimit = 256;

    private readonly Dictionary<TreeNode, SafeDescriptorHandle> _open = [];
    private readonly Dictionary<ulong, SafeDescriptorHandle> _onDevice = [];

    /// <summary>Whether a directory of that device is open (to decode handles against).</summary>
    public bool HasOpenOn(ulong device) => _onDevice.ContainsKey(device);

    /// <summary>An open directory of that device, if any.</summary>
    public bool TryGetOpenOn(ulong device, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SafeDescriptorHandle? fd) => _onDevice.TryGetValue(device, out fd);

    /// <summary>
    /// Whether the directory is still where the tree has it: its parent (found by handle, wherever it is) still holds
    /// the same inode under that name; for a root, the root path still opens to it.
    /// </summary>
    public bool IsAtItsPlace(TreeNode node)
    {
        SafeDescriptorHandle? fd;
        if (node.Parent is null)
        {
            fd = node.Root is { } root ? Descriptors.OpenDirectory(root.Path, out _) : null;
        }
        else
        {
            fd = GetOpen(node.Parent) is { } parentFd ? Descriptors.OpenDirectory(parentFd, node.Name, out _) : null;
        }

        using (fd)
        {
            return fd is not null && IsSame(node, fd);
        }
    }

    /// <summary>
    /// An open descriptor of a tracked directory, wherever it is now: from this batch's cache, by its file handle, or
    /// (no handle) through its parent by name, checked against its device and inode. Owned by the cache.
    /// </summary>
    public SafeDescriptorHandle? GetOpen(TreeNode node)
    {
        if (_open.TryGetValue(node, out var cached))
        {
            return cached;
        }

        var fd = OpenByHandle(node) ?? OpenThroughParent(node);
        if (fd is not null)
        {
            KeepOpen(node, fd);
        }

        return fd;
    }

    /// <summary>Like <see cref="GetOpen"/>, but the caller owns what it gets (a walk frame's descriptor).</summary>
    public SafeDescriptorHandle? OpenVerifiedOwned(TreeNode node)
    {
        if (GetOpen(node) is not { } shared)
        {
            return null;
        }

        var dup = Interop.Libc.Fcntl(shared, Interop.Libc.F_DUPFD_CLOEXEC, 3);
        return dup < 0 ? null : new SafeDescriptorHandle(dup);
    }

    private SafeDescriptorHandle? OpenByHandle(TreeNode node)
    {
        if (node.Handle is null || (!_onDevice.TryGetValue(node.Id.Device, out var anyOnDevice) && (anyOnDevice = AnchorOnDevice(node)) is null))
        {
            return null;
        }

        var fd = Descriptors.OpenByHandle(anyOnDevice, node.Handle, out _);
        if (fd is not null && (!Descriptors.TryGetIdentity(fd, out var id, out _, out _) || id != node.Id))
        {
            fd.Dispose();
            return null;
        }

        return fd;
    }

    /// <summary>
    /// An open directory on the node's filesystem to decode handles against: the topmost ancestor on the same device
    /// (its root, or the mount point of a nested filesystem, which cannot be renamed while mounted), opened by names.
    /// </summary>
    private SafeDescriptorHandle? AnchorOnDevice(TreeNode node)
    {
        var anchor = node;
        while (anchor.Parent is { } parent && parent.Id.Device == node.Id.Device)
        {
            anchor = parent;
        }

        return anchor == node ? null : (_open.TryGetValue(anchor, out var open) ? open : OpenThroughParent(anchor) is { } fd ? Keep(anchor, fd) : null);

        SafeDescriptorHandle Keep(TreeNode n, SafeDescriptorHandle fd)
        {
            KeepOpen(n, fd);
            return fd;
        }
    }

    /// <summary>Opens a directory by its names from the nearest open ancestor (or its root's path), checking each step.</summary>
    private SafeDescriptorHandle? OpenThroughParent(TreeNode node)
    {
        var chain = new List<TreeNode>();
        SafeDescriptorHandle? current = null;
        for (var n = node; ; n = n.Parent)
        {
            if (n != node && _open.TryGetValue(n, out var open))
            {
                current = open;
                break;
            }

            chain.Add(n);
            if (n.Parent is null)
            {
                break;
            }
        }

        for (var i = chain.Count - 1; i >= 0; i--)
        {
            var n = chain[i];
            var next = n.Parent is null
                ? (n.Root is { } root ? Descriptors.OpenDirectory(root.Path, out _) : null)
                : (current is null ? null : Descriptors.OpenDirectory(current, n.Name, out _));
            if (next is null || !IsSame(n, next))
            {
                next?.Dispose();
                return null;
            }

            if (i == 0)
            {
                return next;
            }

            KeepOpen(n, next);
            current = next;
        }

        return null;
    }

    /// <summary>
    /// Whether an open directory is the node's: the same device and inode, and (inode numbers are reused once a
    /// directory is deleted) the same file handle, whose generation tells a new inode from an old one of that number.
    /// </summary>
    private static bool IsSame(TreeNode node, SafeHandle fd) =>
        Descriptors.TryGetIdentity(fd, out var id, out _, out _) && id == node.Id
        && (node.Handle is null || Descriptors.GetHandle(fd) is not { } handle || handle.AsSpan().SequenceEqual(node.Handle));

    /// <summary>Remembers an open directory for this batch (the cache owns it: closed when the batch ends).</summary>
    private void KeepOpen(TreeNode node, SafeDescriptorHandle fd)
    {
        if (_open.Remove(node, out var old) && old != fd)
        {
            if (_onDevice.TryGetValue(node.Id.Device, out var onDevice) && onDevice == old)
            {
                _onDevice.Remove(node.Id.Device);
            }

            old.Dispose();
        }

        _open[node] = fd;
        _onDevice.TryAdd(node.Id.Device, fd);
    }

    /// <summary>Closes this batch's directories (nothing stays open between batches: no mount is pinned).</summary>
    public void CloseAll()
    {
        foreach (var fd in _open.Values)
        {
            fd.Dispose();
        }

        _open.Clear();
        _onDevice.Clear();
    }

    public void Trim()
    {
        if (_open.Count > OpenDirectoriesLimit)
        {
            CloseAll();
        }
    }
}
