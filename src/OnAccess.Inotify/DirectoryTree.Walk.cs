using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using OnAccess.Kernel;

namespace OnAccess.Inotify;

/// <summary>Walking, attaching and finding directories again: always through descriptors.</summary>
public sealed partial class DirectoryTree
{
    /// <summary>Frames deeper than this give their descriptor back while they wait, and open it again when needed.</summary>
    private const int OpenFramesLimit = 64;

    /// <summary>Directories opened while one batch is applied; closed when it ends, or when there get to be this many.</summary>
    private const int OpenDirectoriesLimit = 256;

    // Directories opened (and checked) while applying one batch, and one open directory per device to decode file
    // handles against. Closed at the end of each batch: nothing here pins a mount between batches.
    private readonly Dictionary<TreeNode, SafeDescriptorHandle> _open = [];
    private readonly Dictionary<ulong, SafeDescriptorHandle> _onDevice = [];

    private void WalkRoot(RootState root, bool report, bool failFast, int generation = -1)
    {
        var fd = Descriptors.OpenDirectory(root.Path, out var errno);
        if (fd is null)
        {
            if (!IsBenignOpenError(errno))
            {
                RecordFailure(root, null, root.PathBytes, root.PathBytes, Interop.ErrorInfo.FromErrno(errno).ToString());
            }

            return; // missing, not a directory, or a link: reported lost, watched for
        }

        Walk(root, null, fd, root.PathBytes, root.PathBytes, report, failFast, generation);
    }

    /// <summary>
    /// Adds the directory <paramref name="fd"/> (named <paramref name="name"/> in <paramref name="parent"/>; a root
    /// when that is null) and, for a recursive root, everything below it, depth first. Each directory is opened
    /// relative to its parent's descriptor without following a link, watched and protected through its own
    /// descriptor, and enumerated after that, so nothing created in between escapes. Takes ownership of <paramref name="fd"/>.
    /// </summary>
    private void Walk(RootState root, TreeNode? parent, SafeDescriptorHandle fd, byte[] name, byte[] path, bool report, bool failFast, int generation)
    {
        var first = Attach(root, parent, name, path, fd, report, failFast, generation, out var isNew);
        if (first is null)
        {
            fd.Dispose();
            return;
        }

        var stack = new List<Frame>();
        stack.Add(Enter(root, first, fd, path, report && isNew));

        while (stack.Count > 0)
        {
            var top = stack[^1];
            if (top.Next == top.Subdirectories.Count || !root.Recursive)
            {
                top.Fd?.Dispose();
                ClearRetry(root, top.Node.Parent, top.Node.Name, top.Path);
                stack.RemoveAt(stack.Count - 1);
                continue;
            }

            var childName = top.Subdirectories[top.Next++];
            var childPath = Combine(top.Path, childName);
            if (IsExcluded(childPath, root))
            {
                continue;
            }

            if ((top.Fd ??= OpenVerifiedOwned(top.Node)) is not { } parentFd)
            {
                top.Next = top.Subdirectories.Count; // the directory went away while we walked it
                continue;
            }

            var childFd = Descriptors.OpenDirectory(parentFd, childName, out var errno);
            if (childFd is null)
            {
                if (!IsBenignOpenError(errno))
                {
                    RecordFailure(root, top.Node, childName, childPath, Interop.ErrorInfo.FromErrno(errno).ToString());
                }

                continue; // gone, replaced by a file, or a symbolic link (never followed)
            }

            var child = Attach(root, top.Node, childName, childPath, childFd, report, failFast, generation, out isNew);
            if (child is null)
            {
                childFd.Dispose();
                continue;
            }

            if (stack.Count >= OpenFramesLimit && stack[^OpenFramesLimit].Fd is { } far)
            {
                far.Dispose(); // deep trees: opened again (and checked) when the walk comes back up to it
                stack[^OpenFramesLimit].Fd = null;
            }

            stack.Add(Enter(root, child, childFd, childPath, report && isNew));
        }
    }

    /// <summary>Reads a directory's entries: its subdirectories to walk, and (new directories only) its files to report.</summary>
    private Frame Enter(RootState root, TreeNode node, SafeDescriptorHandle fd, byte[] path, bool reportFiles)
    {
        var entries = new List<DirectoryEntry>();
        var errno = Descriptors.ReadEntries(fd, entries);
        if (errno != 0)
        {
            RecordFailure(root, node.Parent, node.Name, path, "reading its entries failed: " + Interop.ErrorInfo.FromErrno(errno));
        }

        var subdirectories = new List<byte[]>();
        foreach (var entry in entries)
        {
            if (entry.IsDirectory)
            {
                subdirectories.Add(entry.Name);
            }
            else if (reportFiles && entry.Type == Interop.Libc.DT_REG)
            {
                FileEvent(DirectoryTreeEventKind.FileCreated, node, fd, entry.Name);
            }
        }

        return new Frame(node, fd, path, subdirectories);
    }

    /// <summary>
    /// Watches and protects one opened directory and links it into the tree, or finds it already there. Returns null
    /// when it is not to be tracked here (a failure, recorded for a retry; or the same inode tracked elsewhere).
    /// </summary>
    private TreeNode? Attach(RootState root, TreeNode? parent, byte[] name, byte[] path, SafeDescriptorHandle fd, bool report, bool failFast, int generation, out bool isNew)
    {
        isNew = false;
        if (!Descriptors.TryGetIdentity(fd, out var id, out _, out var mountRoot))
        {
            RecordFailure(root, parent, name, path, "statx failed: " + Interop.ErrorInfo.Last());
            return null;
        }

        // The watch names the inode the descriptor holds (/proc/self/fd/N), so no link is followed and PATH_MAX does not apply.
        var wd = Interop.Inotify.AddWatch(_fd!, Descriptors.ProcPath(fd), _mask);
        if (wd < 0)
        {
            var error = Interop.ErrorInfo.Last();
            if (failFast && error.RawErrno == Interop.Errno.ENOSPC)
            {
                throw new WatchLimitException(Encoding.UTF8.GetString(path), error);
            }

            RecordFailure(root, parent, name, path, error.RawErrno == Interop.Errno.ENOSPC
                ? $"the watch limit fs.inotify.max_user_watches ({Interop.ReadSysctl("/proc/sys/fs/inotify/max_user_watches")}) is reached; raise it with sysctl"
                : error.ToString());
            return null;
        }

        if (parent is null && root.Node is { } previous && previous.Wd != wd)
        {
            RemoveSubtree(previous); // the root directory itself was replaced
        }

        TreeNode node;
        if (_byWd.TryGetValue(wd, out var known))
        {
            if (known.Parent == parent && (parent is not null || known.Root == root) && (parent is null || known.Name.AsSpan().SequenceEqual(name)))
            {
                node = known; // already tracked (a resynchronisation, or a directory seen twice)
            }
            else if (IsAtItsPlace(known))
            {
                return null; // the same inode under another name as well (a bind mount): tracked once
            }
            else
            {
                // Found here by a walk before its move was reported (it moved into a directory whose watch did not
                // exist yet, so no MOVED_TO will come): follow it now, or the unpaired MOVED_FROM would drop a
                // directory that is still in the tree.
                if (parent is null || known.Parent is null || parent == known || parent.IsDescendantOf(known))
                {
                    return null;
                }

                Relink(known, parent, name);
                if (!IsTracked(known) || known.Parent != parent)
                {
                    return null;
                }

                node = known;
            }
        }
        else
        {
            if (parent?.FindChild(name) is { } replaced)
            {
                RemoveSubtree(replaced); // another directory now stands at this name
            }

            node = new TreeNode(name, parent, wd, id, Descriptors.GetHandle(fd));
            if (_handler is not null)
            {
                try
                {
                    _handler.DirectoryAdded(new TrackedDirectory(fd, id.Device, id.Inode, () => path));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or InvalidOperationException)
                {
                    Interop.Inotify.RemoveWatch(_fd!, wd);
                    if (failFast && parent is null)
                    {
                        throw; // a root that cannot be protected: start-up fails with the reason
                    }

                    RecordFailure(root, parent, name, path, e.Message);
                    return null;
                }
            }

            if (parent is null)
            {
                node.Root = root;
                root.Node = node;
            }
            else
            {
                parent.AddChild(node);
            }

            _byWd[wd] = node;
            isNew = true;
            if (report)
            {
                Emit(DirectoryTreeEventKind.DirectoryAdded, path);
            }

            if (parent is not null && mountRoot)
            {
                if (_logger.IsEnabled(LogLevel.Information))
                {
                    var shown = DisplayPath(path);
                    Log.NestedMount(_logger, shown);
                }

                Emit(DirectoryTreeEventKind.NestedMount, path);
            }
        }

        node.Seen = generation;
        return node;
    }

    /// <summary>
    /// Whether the directory is still where the tree has it: its parent (found by handle, wherever it is) still holds
    /// the same inode under that name; for a root, the root path still opens to it.
    /// </summary>
    private bool IsAtItsPlace(TreeNode node)
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
    private SafeDescriptorHandle? GetOpen(TreeNode node)
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
    private SafeDescriptorHandle? OpenVerifiedOwned(TreeNode node)
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
    private void CloseOpenDirectories()
    {
        foreach (var fd in _open.Values)
        {
            fd.Dispose();
        }

        _open.Clear();
        _onDevice.Clear();
    }

    private void TrimOpenDirectories()
    {
        if (_open.Count > OpenDirectoriesLimit)
        {
            CloseOpenDirectories();
        }
    }

    /// <summary>
    /// Hands a directory that left the tree to the handler to be unprotected: opened by its file handle (against any
    /// open directory of its filesystem), so it is that directory wherever it is now. A deleted one cannot be opened
    /// (ESTALE) and needs nothing; one on a filesystem without handles is reported as uncertain.
    /// </summary>
    private void Unprotect(TreeNode node, TreeNode? hint, byte[] path, bool mayBeGone)
    {
        if (_handler is null)
        {
            return;
        }

        if (!_onDevice.ContainsKey(node.Id.Device))
        {
            for (var h = hint; h is not null && !_onDevice.ContainsKey(node.Id.Device); h = h.Parent)
            {
                if (h.Id.Device == node.Id.Device && IsTracked(h))
                {
                    GetOpen(h);
                }
            }

            foreach (var root in _roots)
            {
                if (_onDevice.ContainsKey(node.Id.Device))
                {
                    break;
                }

                if (root.Node is { } r && r.Id.Device == node.Id.Device && IsTracked(r))
                {
                    GetOpen(r);
                }
            }
        }

        if (node.Handle is null || !_onDevice.TryGetValue(node.Id.Device, out var anyOnDevice))
        {
            if (!mayBeGone)
            {
                Emit(DirectoryTreeEventKind.RemovalUncertain, path);
            }

            return;
        }

        using var fd = Descriptors.OpenByHandle(anyOnDevice, node.Handle, out var errno);
        if (fd is null)
        {
            if (!mayBeGone && errno is not (Interop.Errno.ESTALE or Interop.Errno.ENOENT))
            {
                Emit(DirectoryTreeEventKind.RemovalUncertain, path);
            }

            return; // deleted: its marks went with it
        }

        if (Descriptors.TryGetIdentity(fd, out var id, out _, out _) && id == node.Id)
        {
            try
            {
                _handler.DirectoryRemoved(new TrackedDirectory(fd, id.Device, id.Inode, () => path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or InvalidOperationException)
            {
                if (_logger.IsEnabled(LogLevel.Warning))
                {
                    Log.UnprotectFailed(_logger, DisplayPath(path), e.Message);
                }

                Emit(DirectoryTreeEventKind.RemovalUncertain, path);
            }
        }
    }

    /// <summary>How many directories the roots hold (for the watch-limit message): counted through descriptors, exclusions pruned.</summary>
    private int CountDirectories()
    {
        var count = 0;
        var entries = new List<DirectoryEntry>();
        foreach (var root in _roots)
        {
            if (Descriptors.OpenDirectory(root.Path, out _) is not { } rootFd)
            {
                continue;
            }

            var stack = new Stack<(SafeDescriptorHandle Fd, byte[] Path)>();
            stack.Push((rootFd, root.PathBytes));
            while (stack.Count > 0)
            {
                var (fd, path) = stack.Pop();
                using (fd)
                {
                    count++;
                    if (!root.Recursive)
                    {
                        continue;
                    }

                    entries.Clear();
                    Descriptors.ReadEntries(fd, entries);
                    foreach (var entry in entries.Where(e => e.IsDirectory))
                    {
                        var childPath = Combine(path, entry.Name);
                        if (!IsExcluded(childPath, root) && Descriptors.OpenDirectory(fd, entry.Name, out _) is { } child)
                        {
                            stack.Push((child, childPath));
                        }
                    }
                }
            }
        }

        return count;
    }

    private static string DisplayPath(byte[] path) => Text.DisplayText.Escape(path);

    /// <summary>One directory of a walk: its descriptor (given back when deep), its path, and the subdirectories left.</summary>
    private sealed class Frame(TreeNode node, SafeDescriptorHandle? fd, byte[] path, List<byte[]> subdirectories)
    {
        public TreeNode Node { get; } = node;

        public SafeDescriptorHandle? Fd { get; set; } = fd;

        public byte[] Path { get; } = path;

        public List<byte[]> Subdirectories { get; } = subdirectories;

        public int Next { get; set; }
    }
}
