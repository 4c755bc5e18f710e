using Microsoft.Extensions.Logging;
using OnAccess.Kernel;

namespace OnAccess.Inotify;

/// <summary>
/// Takes directories out of the tree, children first, and hands each one that still exists to the handler to be
/// unprotected, found again by its file handle wherever it went.
/// </summary>
internal sealed class TreeRemoval(TreeContext t)
{
    private readonly TreeContext _t = t;

    /// <summary>
    /// Stops tracking a directory and its subtree, children first. Each directory that still exists is found again by
    /// its file handle and handed to the handler to be unprotected, wherever it has moved; when the kernel reported the
    /// top one gone (deleted or unmounted: <paramref name="gone"/>), it is not looked for, and what cannot be found
    /// below it is taken as gone too.
    /// </summary>
    public void RemoveSubtree(TreeNode node, bool gone = false)
    {
        var order = node.SelfAndDescendants();
        var hint = node.Parent;
        for (var i = order.Count - 1; i >= 0; i--)
        {
            var n = order[i];
            if (!_t.IsTracked(n))
            {
                continue;
            }

            var path = n.GetPath();
            _t.ByWd.Remove(n.Wd);
            Interop.Inotify.RemoveWatch(_t.Fd!, n.Wd); // EINVAL when the kernel already dropped it: fine
            if (!gone || n != node)
            {
                // Below a directory the kernel reports gone, a directory may have moved away just before (its
                // MOVED_FROM waiting in this batch): it still exists and is unprotected; those truly gone are not found.
                Unprotect(n, hint, path, mayBeGone: gone);
            }

            _t.Retries.DropUnder(n);
            _t.Emit(DirectoryTreeEventKind.DirectoryRemoved, path);
        }

        node.Parent?.RemoveChild(node);
        if (node.Parent is null && node.Root is { } root && root.Node == node)
        {
            root.Node = null;
        }
    }

    /// <summary>
    /// Hands a directory that left the tree to the handler to be unprotected: opened by its file handle (against any
    /// open directory of its filesystem), so it is that directory wherever it is now. A deleted one cannot be opened
    /// (ESTALE) and needs nothing; one on a filesystem without handles is reported as uncertain.
    /// </summary>
    public void Unprotect(TreeNode node, TreeNode? hint, byte[] path, bool mayBeGone)
    {
        if (_t.Handler is null)
        {
            return;
        }

        if (!_t.Opener.HasOpenOn(node.Id.Device))
        {
            for (var h = hint; h is not null && !_t.Opener.HasOpenOn(node.Id.Device); h = h.Parent)
            {
                if (h.Id.Device == node.Id.Device && _t.IsTracked(h))
                {
                    _t.Opener.GetOpen(h);
                }
            }

            foreach (var root in _t.Roots)
            {
                if (_t.Opener.HasOpenOn(node.Id.Device))
                {
                    break;
                }

                if (root.Node is { } r && r.Id.Device == node.Id.Device && _t.IsTracked(r))
                {
                    _t.Opener.GetOpen(r);
                }
            }
        }

        if (node.Handle is null || !_t.Opener.TryGetOpenOn(node.Id.Device, out var anyOnDevice))
        {
            if (!mayBeGone)
            {
                _t.Emit(DirectoryTreeEventKind.RemovalUncertain, path);
            }

            return;
        }

        using var fd = Descriptors.OpenByHandle(anyOnDevice, node.Handle, out var errno);
        if (fd is null)
        {
            if (!mayBeGone && errno is not (Interop.Errno.ESTALE or Interop.Errno.ENOENT))
            {
                _t.Emit(DirectoryTreeEventKind.RemovalUncertain, path);
            }

            return; // deleted: its marks went with it
        }

        if (Descriptors.TryGetIdentity(fd, out var id, out _, out _) && id == node.Id)
        {
            try
            {
                _t.Handler.DirectoryRemoved(new TrackedDirectory(fd, id.Device, id.Inode, () => path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or InvalidOperationException)
            {
                if (_t.Logger.IsEnabled(LogLevel.Warning))
                {
                    Log.UnprotectFailed(_t.Logger, TreeContext.DisplayPath(path), e.Message);
                }

                _t.Emit(DirectoryTreeEventKind.RemovalUncertain, path);
            }
        }
    }
}
