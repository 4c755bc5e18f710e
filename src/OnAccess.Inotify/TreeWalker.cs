using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using OnAccess.Kernel;

namespace OnAccess.Inotify;

/// <summary>
/// Walks and attaches directories, always through descriptors: each one opened relative to its parent without
/// following a link, watched and handed to the handler through its own descriptor, and enumerated after that.
/// </summary>
internal sealed class TreeWalker(TreeContext t)
{
    /// <summary>Frames deeper than this give their descriptor back while they wait, and open it again when needed.</summary>
    private const int OpenFramesLimit = 64;

    private readonly TreeContext _t = t;

    public void WalkRoot(RootState root, bool report, bool failFast, int generation = -1)
    {
        var fd = Descriptors.OpenDirectory(root.Path, out var errno);
        if (fd is null)
        {
            if (!TreeContext.IsBenignOpenError(errno))
            {
                _t.Retries.RecordFailure(root, null, root.PathBytes, root.PathBytes, Interop.ErrorInfo.FromErrno(errno).ToString());
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
    public void Walk(RootState root, TreeNode? parent, SafeDescriptorHandle fd, byte[] name, byte[] path, bool report, bool failFast, int generation)
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
                _t.Retries.ClearRetry(root, top.Node.Parent, top.Node.Name, top.Path);
                stack.RemoveAt(stack.Count - 1);
                continue;
            }

            var childName = top.Subdirectories[top.Next++];
            var childPath = TreeContext.Combine(top.Path, childName);
            if (_t.IsExcluded(childPath, root))
            {
                continue;
            }

            if ((top.Fd ??= _t.Opener.OpenVerifiedOwned(top.Node)) is not { } parentFd)
            {
                top.Next = top.Subdirectories.Count; // the directory went away while we walked it
                continue;
            }

            var childFd = Descriptors.OpenDirectory(parentFd, childName, out var errno);
            if (childFd is null)
            {
                if (!TreeContext.IsBenignOpenError(errno))
                {
                    _t.Retries.RecordFailure(root, top.Node, childName, childPath, Interop.ErrorInfo.FromErrno(errno).ToString());
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
            _t.Retries.RecordFailure(root, node.Parent, node.Name, path, "reading its entries failed: " + Interop.ErrorInfo.FromErrno(errno));
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
            _t.Retries.RecordFailure(root, parent, name, path, "statx failed: " + Interop.ErrorInfo.Last());
            return null;
        }

        // The watch names the inode the descriptor holds (/proc/self/fd/N), so no link is followed and PATH_MAX does not apply.
        var wd = Interop.Inotify.AddWatch(_t.Fd!, Descriptors.ProcPath(fd), _t.Mask);
        if (wd < 0)
        {
            var error = Interop.ErrorInfo.Last();
            if (failFast && error.RawErrno == Interop.Errno.ENOSPC)
            {
                throw new WatchLimitException(Encoding.UTF8.GetString(path), error);
            }

            _t.Retries.RecordFailure(root, parent, name, path, error.RawErrno == Interop.Errno.ENOSPC
                ? $"the watch limit fs.inotify.max_user_watches ({Interop.ReadSysctl("/proc/sys/fs/inotify/max_user_watches")}) is reached; raise it with sysctl"
                : error.ToString());
            return null;
        }

        if (parent is null && root.Node is { } previous && previous.Wd != wd)
        {
            _t.Removal.RemoveSubtree(previous); // the root directory itself was replaced
        }

        TreeNode node;
        if (_t.ByWd.TryGetValue(wd, out var known))
        {
            if (known.Parent == parent && (parent is not null || known.Root == root) && (parent is null || known.Name.AsSpan().SequenceEqual(name)))
            {
                node = known; // already tracked (a resynchronisation, or a directory seen twice)
            }
            else if (_t.Opener.IsAtItsPlace(known))
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

                _t.Changes.Relink(known, parent, name);
                if (!_t.IsTracked(known) || known.Parent != parent)
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
                _t.Removal.RemoveSubtree(replaced); // another directory now stands at this name
            }

            node = new TreeNode(name, parent, wd, id, Descriptors.GetHandle(fd));
            if (_t.Handler is not null)
            {
                try
                {
                    _t.Handler.DirectoryAdded(new TrackedDirectory(fd, id.Device, id.Inode, () => path));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or InvalidOperationException)
                {
                    Interop.Inotify.RemoveWatch(_t.Fd!, wd);
                    if (failFast && parent is null)
                    {
                        throw; // a root that cannot be protected: start-up fails with the reason
                    }

                    _t.Retries.RecordFailure(root, parent, name, path, e.Message);
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

            _t.ByWd[wd] = node;
            isNew = true;
            if (report)
            {
                _t.Emit(DirectoryTreeEventKind.DirectoryAdded, path);
            }

            if (parent is not null && mountRoot)
            {
                if (_t.Logger.IsEnabled(LogLevel.Information))
                {
                    var shown = TreeContext.DisplayPath(path);
                    Log.NestedMount(_t.Logger, shown);
                }

                _t.Emit(DirectoryTreeEventKind.NestedMount, path);
            }
        }

        node.Seen = generation;
        return node;
    }

    public void FileEvent(DirectoryTreeEventKind kind, TreeNode directory, SafeHandle? directoryFd, byte[] name)
    {
        if (!_t.Options.ReportFiles)
        {
            return;
        }

        var path = TreeContext.Combine(directory.GetPath(), name);
        if (_t.IsExcluded(path, directory.RootState))
        {
            return;
        }

        _t.Emit(kind, path);
        if (_t.Handler is null || (directoryFd ?? _t.Opener.GetOpen(directory)) is not { } fd)
        {
            return;
        }

        if (Descriptors.OpenRegularFile(fd, name, out _) is { } file)
        {
            try
            {
                _t.Handler.FileChanged(new TrackedFile(file, kind, path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or ObjectDisposedException)
            {
                file.Dispose();
            }
        }
    }

    /// <summary>How many directories the roots hold (for the watch-limit message): counted through descriptors, exclusions pruned.</summary>
    public int CountDirectories()
    {
        var count = 0;
        var entries = new List<DirectoryEntry>();
        foreach (var root in _t.Roots)
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
                        var childPath = TreeContext.Combine(path, entry.Name);
                        if (!_t.IsExcluded(childPath, root) && Descriptors.OpenDirectory(fd, entry.Name, out _) is { } child)
                        {
                            stack.Push((child, childPath));
                        }
                    }
                }
            }
        }

        return count;
    }

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
