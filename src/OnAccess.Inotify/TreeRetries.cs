using System.Text;
using Microsoft.Extensions.Logging;
using OnAccess.Kernel;

namespace OnAccess.Inotify;

/// <summary>
/// Directories (each with its subtree) that could not be watched or protected: reported once, tried again with a
/// delay that doubles up to <see cref="DirectoryTreeOptions.RetryMaxDelay"/>, until they are.
/// </summary>
internal sealed class TreeRetries(TreeContext t)
{
    private readonly TreeContext _t = t;

    // By parent and name.
    private readonly Dictionary<(TreeNode? Parent, RootState Root, string Name), Retry> _retries = [];

    /// <summary>How many are waiting to be tried again.</summary>
    public int Count => _retries.Count;

    /// <summary>Whether a root itself is waiting to be tried again.</summary>
    public bool HasRoot(RootState root) => _retries.Keys.Any(k => k.Root == root);

    /// <summary>When the next retry is due (Environment.TickCount64), or null when none waits.</summary>
    public long? NextDue => _retries.Count == 0 ? null : _retries.Values.Min(r => r.Due);

    /// <summary>
    /// A directory could not be watched or protected: it is not tracked for now, is reported (once) and is tried again
    /// after a delay that doubles with each failure.
    /// </summary>
    public void RecordFailure(RootState root, TreeNode? parent, byte[] name, byte[] path, string reason)
    {
        var key = (parent, root, Encoding.Latin1.GetString(name));
        if (_retries.TryGetValue(key, out var retry))
        {
            var doubled = retry.Delay * 2;
            retry.Delay = doubled > _t.Options.RetryMaxDelay ? _t.Options.RetryMaxDelay : doubled;
        }
        else
        {
            _retries[key] = retry = new Retry(parent, root, name, _t.Options.RetryInitialDelay);
            Interlocked.Increment(ref _t.WatchFailures);
            if (_t.Logger.IsEnabled(LogLevel.Error))
            {
                Log.WatchFailed(_t.Logger, TreeContext.DisplayPath(path), reason);
            }

            _t.Emit(DirectoryTreeEventKind.WatchFailed, Encoding.UTF8.GetString(path), reason);
        }

        retry.Due = Environment.TickCount64 + (long)retry.Delay.TotalMilliseconds;
    }

    /// <summary>The directory is tracked and its entries were read: any retry for it is over.</summary>
    public void ClearRetry(RootState root, TreeNode? parent, byte[] name, byte[] path)
    {
        if (_retries.Count > 0 && _retries.Remove((parent, root, Encoding.Latin1.GetString(name))))
        {
            if (_t.Logger.IsEnabled(LogLevel.Information))
            {
                var shown = TreeContext.DisplayPath(path);
                Log.ProtectionRestored(_t.Logger, shown);
            }

            _t.Emit(DirectoryTreeEventKind.ProtectionRestored, path);
        }
    }

    /// <summary>A directory left the tree: retries for what was under it go too.</summary>
    public void DropUnder(TreeNode node)
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

    public void RunDue()
    {
        if (_retries.Count == 0)
        {
            return;
        }

        var now = Environment.TickCount64;
        foreach (var (key, retry) in _retries.Where(r => r.Value.Due <= now).ToList())
        {
            _t.Opener.Trim();
            if (retry.Parent is null)
            {
                _retries.Remove(key);
                if (retry.Root.Node is null)
                {
                    _t.Walker.WalkRoot(retry.Root, report: true, failFast: false);
                    if (retry.Root.Node is not null)
                    {
                        Log.RootRestored(_t.Logger, retry.Root.Path);
                        _t.Emit(DirectoryTreeEventKind.RootRestored, retry.Root.Path);
                    }
                }

                continue;
            }

            if (!_t.IsTracked(retry.Parent))
            {
                _retries.Remove(key); // its parent left the tree
                continue;
            }

            var path = TreeContext.Combine(retry.Parent.GetPath(), retry.Name);
            if (_t.Opener.GetOpen(retry.Parent) is not { } parentFd)
            {
                RecordFailure(retry.Root, retry.Parent, retry.Name, path, "its directory cannot be opened");
                continue;
            }

            var fd = Descriptors.OpenDirectory(parentFd, retry.Name, out var errno);
            if (fd is null)
            {
                if (TreeContext.IsBenignOpenError(errno))
                {
                    _retries.Remove(key); // it is gone
                }
                else
                {
                    RecordFailure(retry.Root, retry.Parent, retry.Name, path, Interop.ErrorInfo.FromErrno(errno).ToString());
                }

                continue;
            }

            _t.Walker.Walk(retry.Root, retry.Parent, fd, retry.Name, path, report: true, failFast: false, generation: -1);
        }
    }

    private sealed class Retry(TreeNode? parent, RootState root, byte[] name, TimeSpan delay)
    {
        public TreeNode? Parent { get; } = parent;

        public RootState Root { get; } = root;

        public byte[] Name { get; } = name;

        public TimeSpan Delay { get; set; } = delay;

        public long Due { get; set; }
    }

    /// <summary>Arms <paramref name="timer"/> for the next retry that is due (a wake-up of the processing loop).</summary>
    public void Schedule(Timer timer)
    {
        if (NextDue is { } due)
        {
            timer.Change(Math.Max(0, due - Environment.TickCount64), Timeout.Infinite);
        }
        else
        {
            timer.Change(Timeout.Infinite, Timeout.Infinite);
        }
    }
}
