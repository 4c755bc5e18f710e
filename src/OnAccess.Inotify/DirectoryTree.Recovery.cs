using System.Text;
using Microsoft.Extensions.Logging;
using OnAccess.Kernel;

namespace OnAccess.Inotify;

/// <summary>What keeps the tree whole: retries with backoff, lost and restored roots, and rebuilding after an overflow.</summary>
public sealed partial class DirectoryTree
{
    // Directories (each with its subtree) that could not be watched or protected, by parent and name.
    private readonly Dictionary<(TreeNode? Parent, RootState Root, string Name), Retry> _retries = [];

    /// <summary>
    /// A directory could not be watched or protected: it is not tracked for now, is reported (once) and is tried again
    /// after a delay that doubles with each failure.
    /// </summary>
    private void RecordFailure(RootState root, TreeNode? parent, byte[] name, byte[] path, string reason)
    {
        var key = (parent, root, Encoding.Latin1.GetString(name));
        if (_retries.TryGetValue(key, out var retry))
        {
            var doubled = retry.Delay * 2;
            retry.Delay = doubled > _options.RetryMaxDelay ? _options.RetryMaxDelay : doubled;
        }
        else
        {
            _retries[key] = retry = new Retry(parent, root, name, _options.RetryInitialDelay);
            Interlocked.Increment(ref _watchFailures);
            if (_logger.IsEnabled(LogLevel.Error))
            {
                Log.WatchFailed(_logger, DisplayPath(path), reason);
            }

            Emit(DirectoryTreeEventKind.WatchFailed, Encoding.UTF8.GetString(path), reason);
        }

        retry.Due = Environment.TickCount64 + (long)retry.Delay.TotalMilliseconds;
    }

    /// <summary>The directory is tracked and its entries were read: any retry for it is over.</summary>
    private void ClearRetry(RootState root, TreeNode? parent, byte[] name, byte[] path)
    {
        if (_retries.Count > 0 && _retries.Remove((parent, root, Encoding.Latin1.GetString(name))))
        {
            if (_logger.IsEnabled(LogLevel.Information))
            {
                var shown = DisplayPath(path);
                Log.ProtectionRestored(_logger, shown);
            }

            Emit(DirectoryTreeEventKind.ProtectionRestored, path);
        }
    }

    /// <summary>A directory left the tree: retries for what was under it go too.</summary>
    private void DropRetriesUnder(TreeNode node)
    {
        if (_retries.Count == 0)
        {
            return;
        }

        foreach (var key in _retries.Keys.Where(k => k.Parent == node).ToList())
        {
            _retries.Remove(key);
        }
    }

    private void RunDueRetries()
    {
        if (_retries.Count == 0)
        {
            return;
        }

        var now = Environment.TickCount64;
        foreach (var (key, retry) in _retries.Where(r => r.Value.Due <= now).ToList())
        {
            TrimOpenDirectories();
            if (retry.Parent is null)
            {
                _retries.Remove(key);
                if (retry.Root.Node is null)
                {
                    WalkRoot(retry.Root, report: true, failFast: false);
                    if (retry.Root.Node is not null)
                    {
                        Log.RootRestored(_logger, retry.Root.Path);
                        Emit(DirectoryTreeEventKind.RootRestored, retry.Root.Path);
                    }
                }

                continue;
            }

            if (!IsTracked(retry.Parent))
            {
                _retries.Remove(key); // its parent left the tree
                continue;
            }

            var path = Combine(retry.Parent.GetPath(), retry.Name);
            if (GetOpen(retry.Parent) is not { } parentFd)
            {
                RecordFailure(retry.Root, retry.Parent, retry.Name, path, "its directory cannot be opened");
                continue;
            }

            var fd = Descriptors.OpenDirectory(parentFd, retry.Name, out var errno);
            if (fd is null)
            {
                if (IsBenignOpenError(errno))
                {
                    _retries.Remove(key); // it is gone
                }
                else
                {
                    RecordFailure(retry.Root, retry.Parent, retry.Name, path, Interop.ErrorInfo.FromErrno(errno).ToString());
                }

                continue;
            }

            Walk(retry.Root, retry.Parent, fd, retry.Name, path, report: true, failFast: false, generation: -1);
        }
    }

    /// <summary>Arms the timer for the next retry that is due (a wake-up of the processing loop).</summary>
    private void ScheduleRetries()
    {
        if (_retryTimer is null || _disposing)
        {
            return;
        }

        if (_retries.Count == 0)
        {
            _retryTimer.Change(Timeout.Infinite, Timeout.Infinite);
            return;
        }

        var due = _retries.Values.Min(r => r.Due);
        _retryTimer.Change(Math.Max(0, due - Environment.TickCount64), Timeout.Infinite);
    }

    private void RunRequests()
    {
        while (_requests.TryDequeue(out var request))
        {
            try
            {
                request.Before?.Invoke();
                foreach (var node in _byWd.Values.ToList())
                {
                    TrimOpenDirectories();
                    if (!IsTracked(node) || _handler is null)
                    {
                        continue;
                    }

                    var path = node.GetPath();
                    if (GetOpen(node) is not { } fd)
                    {
                        continue; // gone meanwhile: its own events follow
                    }

                    try
                    {
                        _handler.DirectoryAdded(new TrackedDirectory(fd, node.Id.Device, node.Id.Inode, () => path));
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or InvalidOperationException)
                    {
                        // Not protected in the new place: take it out of the tree and try it again like any failure.
                        var parent = node.Parent;
                        var root = node.RootState;
                        RemoveSubtree(node, gone: true);
                        RecordFailure(root, parent, parent is null ? root.PathBytes : node.Name, path, e.Message);
                    }
                }

                request.Completion.TrySetResult();
            }
            catch (Exception e)
            {
                request.Completion.TrySetException(e);
            }
        }
    }

    private void LoseRoot(RootState root, bool gone = false)
    {
        if (root.Node is null)
        {
            return;
        }

        RemoveSubtree(root.Node, gone);
        root.Node = null;
        Log.RootLost(_logger, root.Path);
        Emit(DirectoryTreeEventKind.RootLost, root.Path);
        WatchParent(root);
    }

    private void RestoreRoot(RootState root)
    {
        WalkRoot(root, report: true, failFast: false);
        if (root.Node is not null)
        {
            Log.RootRestored(_logger, root.Path);
            Emit(DirectoryTreeEventKind.RootRestored, root.Path);
        }
    }

    /// <summary>Watches a root's parent for the root's return (by its configured path: an administrator's name).</summary>
    private void WatchParent(RootState root)
    {
        var parent = Path.GetDirectoryName(root.Path);
        if (string.IsNullOrEmpty(parent) || root.ParentWd >= 0)
        {
            return;
        }

        var wd = Interop.Inotify.AddWatch(_fd!, parent, RootParentMask);
        if (wd < 0)
        {
            return; // the parent is gone too; a later resynchronisation or restart will find the root
        }

        root.ParentWd = wd;
        if (!_rootParents.TryGetValue(wd, out var list))
        {
            _rootParents[wd] = list = [];
        }

        if (!list.Contains(root))
        {
            list.Add(root);
        }
    }

    /// <summary>Rebuilds the tree from the roots after lost events: adds what is new, removes (and unprotects) what is gone.</summary>
    private void Resynchronize()
    {
        Interlocked.Increment(ref _overflows);
        Log.Overflowed(_logger);
        Emit(DirectoryTreeEventKind.Overflowed, string.Empty);
        var generation = ++_generation;
        var before = _byWd.Count;
        var added = 0;
        foreach (var root in _roots)
        {
            TrimOpenDirectories();
            var countBefore = _byWd.Count;
            if (root.Node is null)
            {
                RestoreRoot(root);
            }
            else
            {
                WalkRoot(root, report: true, failFast: false, generation);
            }

            added += _byWd.Count - countBefore;
        }

        var stale = _byWd.Values.Where(n => n.Seen != generation).ToList();
        foreach (var n in stale)
        {
            TrimOpenDirectories();
            if (IsTracked(n))
            {
                if (n.Parent is null && n.Root is { } root)
                {
                    LoseRoot(root);
                }
                else
                {
                    RemoveSubtree(n);
                }
            }
        }

        var removed = Math.Max(0, before + added - _byWd.Count);
        Log.Resynchronized(_logger, added, removed, _byWd.Count);
        Emit(DirectoryTreeEventKind.Resynchronized, string.Empty);
    }

    private sealed class Retry(TreeNode? parent, RootState root, byte[] name, TimeSpan delay)
    {
        public TreeNode? Parent { get; } = parent;

        public RootState Root { get; } = root;

        public byte[] Name { get; } = name;

        public TimeSpan Delay { get; set; } = delay;

        public long Due { get; set; }
    }
}
