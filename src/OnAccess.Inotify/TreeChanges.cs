using OnAccess.Kernel;
using static Interop.InotifyConstants;

namespace OnAccess.Inotify;

/// <summary>
/// Applies one batch of inotify records to the tree: creations, deletions, moves paired by cookie (unpaired halves
/// resolved at the end of the batch), lost watches and overflows.
/// </summary>
internal sealed class TreeChanges(TreeContext t)
{
    private readonly TreeContext _t = t;

    public void Apply(List<InotifyRecord> batch)
    {
        var movedFrom = new Dictionary<uint, TreeNode>();
        var overflowed = false;
        foreach (var r in batch)
        {
            _t.Opener.Trim();
            if ((r.Mask & IN_Q_OVERFLOW) != 0)
            {
                overflowed = true;
                continue;
            }

            if (_t.RootParents.TryGetValue(r.Wd, out var waiting) && (r.Mask & (IN_CREATE | IN_MOVED_TO)) != 0 && (r.Mask & IN_ISDIR) != 0)
            {
                foreach (var root in waiting.ToList())
                {
                    if (root.Node is null && root.NameBytes.AsSpan().SequenceEqual(r.Name))
                    {
                        _t.Recovery.RestoreRoot(root);
                    }
                }
            }

            if (!_t.ByWd.TryGetValue(r.Wd, out var node))
            {
                continue; // a watch we already dropped, or a parent-of-root watch only
            }

            if ((r.Mask & IN_IGNORED) != 0)
            {
                WatchGone(node);
                continue;
            }

            if ((r.Mask & (IN_DELETE_SELF | IN_MOVE_SELF)) != 0)
            {
                if (node.Parent is null && node.Root is { } lostRoot && !_t.Opener.IsAtItsPlace(node))
                {
                    _t.Recovery.LoseRoot(lostRoot, gone: (r.Mask & IN_DELETE_SELF) != 0); // moved away: it still exists, unprotect it
                }

                continue; // a non-root's removal is handled through its parent's DELETE / MOVED_FROM
            }

            var isDir = (r.Mask & IN_ISDIR) != 0;
            if ((r.Mask & IN_CREATE) != 0)
            {
                if (isDir)
                {
                    DirectoryAppeared(node, r.Name);
                }
                else
                {
                    _t.Walker.FileEvent(DirectoryTreeEventKind.FileCreated, node, null, r.Name);
                }
            }

            // Events name entries, not inodes: only a node that is no longer in its parent under that name is the
            // one that moved (the name may already hold a newer directory a walk found).
            if ((r.Mask & IN_MOVED_FROM) != 0 && isDir && node.FindChild(r.Name) is { } leaving && !_t.Opener.IsAtItsPlace(leaving))
            {
                movedFrom[r.Cookie] = leaving;
            }

            if ((r.Mask & IN_MOVED_TO) != 0)
            {
                if (!isDir)
                {
                    _t.Walker.FileEvent(DirectoryTreeEventKind.FileMovedIn, node, null, r.Name);
                }
                else if (movedFrom.Remove(r.Cookie, out var moved) && _t.IsTracked(moved))
                {
                    // Only the node moves: its watches and marks are on inodes, and what happened inside it meanwhile
                    // was applied through descriptors found by handle, not through its old path.
                    Relink(moved, node, r.Name);
                }
                else
                {
                    DirectoryAppeared(node, r.Name);
                }
            }

            if ((r.Mask & IN_DELETE) != 0 && isDir && node.FindChild(r.Name) is { } deleted && !_t.Opener.IsAtItsPlace(deleted))
            {
                _t.Removal.RemoveSubtree(deleted);
            }

            if ((r.Mask & IN_CLOSE_WRITE) != 0 && !isDir)
            {
                _t.Walker.FileEvent(DirectoryTreeEventKind.FileClosedWrite, node, null, r.Name);
            }
        }

        // Unpaired MOVED_FROM: the directory left the tree (unless a walk already found it at its new place inside,
        // or the name holds it again).
        foreach (var left in movedFrom.Values)
        {
            if (_t.IsTracked(left) && !_t.Opener.IsAtItsPlace(left))
            {
                _t.Removal.RemoveSubtree(left);
            }
        }

        if (overflowed || _t.RebuildNeeded)
        {
            _t.RebuildNeeded = false;
            _t.Recovery.Resynchronize(overflowed);
        }
    }

    public void DirectoryAppeared(TreeNode parent, byte[] name)
    {
        var root = parent.RootState;
        if (!root.Recursive)
        {
            return; // a non-recursive root tracks only itself
        }

        if (!_t.IsTracked(parent))
        {
            return; // its parent left the tree meanwhile: nothing here to attach to
        }

        var path = TreeContext.Combine(parent.GetPath(), name);
        if (_t.IsExcluded(path, root) || _t.Opener.GetOpen(parent) is not { } parentFd)
        {
            return; // excluded, or the parent itself is gone (its own events follow)
        }

        var fd = Descriptors.OpenDirectory(parentFd, name, out var errno);
        if (fd is null)
        {
            if (!TreeContext.IsBenignOpenError(errno))
            {
                _t.Retries.RecordFailure(root, parent, name, path, Interop.ErrorInfo.FromErrno(errno).ToString());
            }

            return; // gone, replaced by a file, or a symbolic link (never followed)
        }

        // If a node of that name exists, the walk keeps it when the inode is the same and replaces it otherwise.
        _t.Walker.Walk(root, parent, fd, name, path, report: true, failFast: false, generation: -1);
    }

    public void Relink(TreeNode moved, TreeNode newParent, byte[] newName)
    {
        if (newParent == moved || newParent.IsDescendantOf(moved) || moved.Parent is null)
        {
            // The filesystem cannot hold this (rename refuses to move a directory into itself): the tree is behind.
            // Start this part over from what is on disk: below its new parent when that is still tracked; when the
            // new parent was inside what was just taken out, nothing tracked says where these directories are now,
            // so the whole tree is rebuilt from the roots at the end of the batch (attaching them below a node no
            // longer in the tree would keep them tracked, and marked, wherever they go next).
            _t.Removal.RemoveSubtree(moved);
            if (_t.IsTracked(newParent))
            {
                DirectoryAppeared(newParent, newName);
            }
            else
            {
                _t.RebuildNeeded = true;
            }

            return;
        }

        var oldPath = moved.GetPath();
        moved.Parent.RemoveChild(moved);
        if (newParent.FindChild(newName) is { } clash && clash != moved)
        {
            _t.Removal.RemoveSubtree(clash);
        }

        moved.Name = newName;
        moved.Parent = newParent;
        newParent.AddChild(moved);
        var newPath = moved.GetPath();
        if (_t.IsExcluded(newPath, newParent.RootState) || !newParent.RootState.Recursive)
        {
            _t.Removal.RemoveSubtree(moved);
            return;
        }

        moved.Root = null; // a relinked directory belongs to its new parent's root
        _t.Emit(DirectoryTreeEventKind.DirectoryMoved, newPath, oldPath);

        // Parts of the moved subtree may now lie under an exclusion.
        if (_t.Excludes.Length > 0)
        {
            foreach (var n in moved.SelfAndDescendants().Skip(1))
            {
                if (_t.IsTracked(n) && _t.IsExcluded(n.GetPath(), newParent.RootState))
                {
                    _t.Removal.RemoveSubtree(n);
                }
            }
        }
    }

    public void WatchGone(TreeNode node)
    {
        if (_t.IsTracked(node))
        {
            if (node.Parent is null && node.Root is { } root)
            {
                _t.Recovery.LoseRoot(root, gone: true);
            }
            else
            {
                _t.Removal.RemoveSubtree(node, gone: true);
            }
        }
    }
}
