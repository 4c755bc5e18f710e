using static Interop.InotifyConstants;

namespace OnAccess.Inotify;

/// <summary>What keeps the tree whole when the kernel cannot: lost and restored roots, and rebuilding after an overflow.</summary>
internal sealed class TreeRecovery(TreeContext t)
{
    private const uint RootParentMask = IN_CREATE | IN_MOVED_TO | IN_ONLYDIR | IN_MASK_ADD;

    private readonly TreeContext _t = t;

    public void LoseRoot(RootState root, bool gone = false)
    {
        if (root.Node is null)
        {
            return;
        }

        _t.Removal.RemoveSubtree(root.Node, gone);
        root.Node = null;
        Log.RootLost(_t.Logger, root.Path);
        _t.Emit(DirectoryTreeEventKind.RootLost, root.Path);
        WatchParent(root);
    }

    public void RestoreRoot(RootState root)
    {
        _t.Walker.WalkRoot(root, report: true, failFast: false);
        if (root.Node is not null)
        {
            Log.RootRestored(_t.Logger, root.Path);
            _t.Emit(DirectoryTreeEventKind.RootRestored, root.Path);
        }
    }

    /// <summary>Watches a root's parent for the root's return (by its configured path: an administrator's name).</summary>
    public void WatchParent(RootState root)
    {
        var parent = Path.GetDirectoryName(root.Path);
        if (string.IsNullOrEmpty(parent) || root.ParentWd >= 0)
        {
            return;
        }

        var wd = Interop.Inotify.AddWatch(_t.Fd!, parent, RootParentMask);
        if (wd < 0)
        {
            return; // the parent is gone too; a later resynchronisation or restart will find the root
        }

        root.ParentWd = wd;
        if (!_t.RootParents.TryGetValue(wd, out var list))
        {
            _t.RootParents[wd] = list = [];
        }

        if (!list.Contains(root))
        {
            list.Add(root);
        }
    }

    /// <summary>Rebuilds the tree from the roots after lost events: adds what is new, removes (and unprotects) what is gone.</summary>
    public void Resynchronize(bool overflowed = true)
    {
        if (overflowed)
        {
            Interlocked.Increment(ref _t.Overflows);
            Log.Overflowed(_t.Logger);
            _t.Emit(DirectoryTreeEventKind.Overflowed, string.Empty);
        }

        var generation = ++_t.Generation;
        var before = _t.ByWd.Count;
        var added = 0;
        foreach (var root in _t.Roots)
        {
            _t.Opener.Trim();
            var countBefore = _t.ByWd.Count;
            if (root.Node is null)
            {
                RestoreRoot(root);
            }
            else
            {
                _t.Walker.WalkRoot(root, report: true, failFast: false, generation);
            }

            added += _t.ByWd.Count - countBefore;
        }

        var stale = _t.ByWd.Values.Where(n => n.Seen != generation).ToList();
        foreach (var n in stale)
        {
            _t.Opener.Trim();
            if (_t.IsTracked(n))
            {
                if (n.Parent is null && n.Root is { } root)
                {
                    LoseRoot(root);
                }
                else
                {
                    _t.Removal.RemoveSubtree(n);
                }
            }
        }

        var removed = Math.Max(0, before + added - _t.ByWd.Count);
        Log.Resynchronized(_t.Logger, added, removed, _t.ByWd.Count);
        _t.Emit(DirectoryTreeEventKind.Resynchronized, string.Empty);
    }
}
