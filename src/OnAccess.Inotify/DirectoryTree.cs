using System.Buffers;
using System.IO.Enumeration;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnAccess.Kernel;
using OnAccess.Paths;
using static Interop.InotifyConstants;

namespace OnAccess.Inotify;

/// <summary>
/// A live picture of every directory under a set of roots, kept on inotify: what fanotify's non-recursive
/// directory marks need to cover a tree ("Dynamic Directory Determination"). A dedicated thread reads the kernel's
/// records into a pipe; a processing loop applies them to a tree of nodes (a rename relinks one node; full paths are
/// built on demand) and publishes <see cref="DirectoryTreeEvent"/>s, in order, on <see cref="Events"/>. No user code
/// runs on either.
/// </summary>
/// <remarks>
/// Guarantees: a new directory is watched before it is enumerated, so directories and files made inside it before
/// its watch existed are reported too; exclusions are applied before a watch is added, also to directories created
/// or moved in later; moves are paired by cookie (unpaired halves are resolved at the end of a batch); a queue
/// overflow rebuilds the tree from the roots and reports the differences; a lost root is watched for and restored.
/// Lock order: <c>_gate</c> guards the tree and the wd dictionary; nothing else is locked.
/// </remarks>
public sealed class DirectoryTree : IAsyncDisposable
{
    private const uint DirectoryMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK;
    private const uint RootParentMask = IN_CREATE | IN_MOVED_TO | IN_ONLYDIR | IN_MASK_ADD;

    private readonly DirectoryTreeOptions _options;
    private readonly ILogger _logger;
    private readonly string[] _excludes;
    private readonly List<RootState> _roots;
    private readonly Dictionary<int, Node> _byWd = [];
    private readonly Dictionary<int, List<RootState>> _rootParents = [];
    private readonly Channel<DirectoryTreeEvent> _events;
    private readonly List<DirectoryTreeEvent> _outbox = [];
    private readonly Lock _gate = new();
    private readonly uint _mask;
    private SafeDescriptorHandle? _fd;
    private KernelReadPump? _pump;
    private Task? _processing;
    private HashSet<string> _mountPoints = [];
    private int _generation;
    private long _overflows;

    /// <summary>Creates a tracker; nothing is watched until <see cref="Start"/>.</summary>
    /// <param name="options">Roots, exclusions, file reporting.</param>
    /// <param name="logger">Where overflows, lost roots and watch failures are logged.</param>
    public DirectoryTree(DirectoryTreeOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.EventCapacity, 1);
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _excludes = [.. options.ExcludePaths.Select(TrimSlash)];
        _roots = [.. options.Roots.Select(r => new RootState(TrimSlash(r.Path), r.Recursive))];
        _mask = DirectoryMask | (options.ReportFiles ? IN_CLOSE_WRITE : 0);
        _events = Channel.CreateBounded<DirectoryTreeEvent>(new BoundedChannelOptions(options.EventCapacity)
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>The notifications, in the order things happened. Read them promptly.</summary>
    public ChannelReader<DirectoryTreeEvent> Events => _events.Reader;

    /// <summary>How many directories are tracked (each holds one inotify watch).</summary>
    public int DirectoryCount
    {
        get
        {
            lock (_gate)
            {
                return _byWd.Count;
            }
        }
    }

    /// <summary>Kernel queue overflows seen.</summary>
    public long OverflowCount => Interlocked.Read(ref _overflows);

    /// <summary>The inotify descriptor's number (for diagnostics such as /proc/self/fdinfo).</summary>
    internal int DescriptorNumber => _fd?.Number ?? -1;

    internal KernelReadPump? Pump => _pump;

    /// <summary>Every watch descriptor this tracker holds: one per directory plus the watches on lost-root parents.</summary>
    internal HashSet<int> GetWatchDescriptors()
    {
        lock (_gate)
        {
            var result = new HashSet<int>(_byWd.Keys);
            result.UnionWith(_rootParents.Keys);
            return result;
        }
    }

    /// <summary>
    /// Creates the inotify instance, walks every root adding a watch to each directory (excluded directories are
    /// pruned before their watch), and starts reading. Directories found now are in <see cref="GetDirectories"/>;
    /// only later changes are reported.
    /// </summary>
    /// <exception cref="IOException">The watch or instance limit is reached; the message names the sysctl, its value and what was needed.</exception>
    /// <exception cref="InvalidOperationException">Already started.</exception>
    public void Start()
    {
        if (_fd is not null)
        {
            throw new InvalidOperationException("The tree is already started.");
        }

        var fd = Interop.Inotify.Init1(IN_CLOEXEC | IN_NONBLOCK);
        if (fd < 0)
        {
            var error = Interop.ErrorInfo.Last();
            throw error.RawErrno == Interop.Errno.EMFILE
                ? Interop.GetExceptionForError(error, "inotify_init1", advice: $"The per-user instance limit fs.inotify.max_user_instances is {Interop.ReadSysctl("/proc/sys/fs/inotify/max_user_instances")}; raise it with sysctl (for example sysctl fs.inotify.max_user_instances=1024).")
                : Interop.GetExceptionForError(error, "inotify_init1");
        }

        _fd = new SafeDescriptorHandle(fd);
        lock (_gate)
        {
            _mountPoints = MountTable.Read();
            foreach (var root in _roots)
            {
                WatchParent(root);
                try
                {
                    Walk(root, null, root.Path, root.Path, report: false, failFast: true);
                }
                catch (WatchLimitException limit)
                {
                    var needed = limit.Watched + CountDirectories(root, limit.Path);
                    _fd.Dispose();
                    throw Interop.GetExceptionForError(limit.Error, "inotify_add_watch", limit.Path, $"The per-user watch limit fs.inotify.max_user_watches is {Interop.ReadSysctl("/proc/sys/fs/inotify/max_user_watches")}, and the roots need at least {needed} directories watched. Raise it with sysctl (for example sysctl fs.inotify.max_user_watches={Math.Max(needed * 2, 65536)}).");
                }

                if (root.Node is null)
                {
                    Emit(DirectoryTreeEventKind.RootLost, root.Path);
                }
            }
        }

        _pump = new KernelReadPump(_fd, "OnAccess inotify reader", static (_, _) => ReadFailureAction.Stop);
        _pump.Start();
        _processing = Task.Run(ProcessAsync);
    }

    /// <summary>A snapshot of every tracked directory's path.</summary>
    /// <returns>The paths, roots first, in no particular order after that.</returns>
    public IReadOnlyList<string> GetDirectories()
    {
        lock (_gate)
        {
            return [.. _byWd.Values.Select(n => n.GetPath())];
        }
    }

    /// <summary>Stops reading and releases every watch.</summary>
    /// <returns>A task that completes when the processing loop has ended.</returns>
    public async ValueTask DisposeAsync()
    {
        _pump?.Dispose();
        if (_processing is not null)
        {
            try
            {
                await _processing.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ChannelClosedException)
            {
            }
        }

        _fd?.Dispose();
        _events.Writer.TryComplete();
    }

    private async Task ProcessAsync()
    {
        var reader = _pump!.Reader;
        Exception? failure = null;
        var batch = new List<InotifyRecord>();
        try
        {
            await FlushOutboxAsync().ConfigureAwait(false); // what the start-up walk found (nested mounts, lost roots)
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                var sequence = new SequenceReader<byte>(buffer);
                while (InotifyEventParser.TryReadEvent(ref sequence, out var record))
                {
                    batch.Add(record);
                }

                reader.AdvanceTo(sequence.Position, buffer.End);
                lock (_gate)
                {
                    Apply(batch);
                }

                batch.Clear();
                await FlushOutboxAsync().ConfigureAwait(false);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }

            await reader.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            failure = e;
        }
        finally
        {
            _events.Writer.TryComplete(failure is IOException ? failure : null);
        }
    }

    private async ValueTask FlushOutboxAsync()
    {
        DirectoryTreeEvent[] pending;
        lock (_gate)
        {
            if (_outbox.Count == 0)
            {
                return;
            }

            pending = [.. _outbox];
            _outbox.Clear();
        }

        foreach (var e in pending)
        {
            await _events.Writer.WriteAsync(e).ConfigureAwait(false);
        }
    }

    private void Apply(List<InotifyRecord> batch)
    {
        var movedFrom = new Dictionary<uint, Node>();
        var overflowed = false;
        foreach (var r in batch)
        {
            if ((r.Mask & IN_Q_OVERFLOW) != 0)
            {
                overflowed = true;
                continue;
            }

            if (_rootParents.TryGetValue(r.Wd, out var waiting) && (r.Mask & (IN_CREATE | IN_MOVED_TO)) != 0 && (r.Mask & IN_ISDIR) != 0)
            {
                foreach (var root in waiting)
                {
                    if (root.Node is null && Path.GetFileName(root.Path) == r.Name)
                    {
                        RestoreRoot(root);
                    }
                }
            }

            if (!_byWd.TryGetValue(r.Wd, out var node))
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
                if (node.Root is { } lostRoot && node.Parent is null)
                {
                    LoseRoot(lostRoot);
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
                    EmitFile(DirectoryTreeEventKind.FileCreated, node, r.Name);
                }
            }

            // The node under that name may be a newer directory a walk already found (events name entries, not
            // inodes): only a node that is no longer at its path is the one that moved.
            if ((r.Mask & IN_MOVED_FROM) != 0 && isDir && node.FindChild(r.Name) is { } leaving && !IsWatchedAtItsPath(leaving))
            {
                movedFrom[r.Cookie] = leaving;
            }

            if ((r.Mask & IN_MOVED_TO) != 0)
            {
                if (!isDir)
                {
                    EmitFile(DirectoryTreeEventKind.FileMovedIn, node, r.Name);
                }
                else if (movedFrom.Remove(r.Cookie, out var moved) && _byWd.ContainsKey(moved.Wd))
                {
                    Relink(moved, node, r.Name);
                    if (_byWd.TryGetValue(moved.Wd, out var current) && current == moved)
                    {
                        // Events processed while this subtree's recorded path was stale (before this move was
                        // reported) may have failed to add its new subdirectories: walk it again at its real path.
                        Walk(moved.RootState, moved.Parent, moved.Name, moved.GetPath(), report: true, failFast: false);
                    }
                }
                else
                {
                    DirectoryAppeared(node, r.Name);
                }
            }

            if ((r.Mask & IN_DELETE) != 0 && isDir && node.FindChild(r.Name) is { } deleted && !IsWatchedAtItsPath(deleted))
            {
                RemoveSubtree(deleted);
            }

            if ((r.Mask & IN_CLOSE_WRITE) != 0 && !isDir)
            {
                EmitFile(DirectoryTreeEventKind.FileClosedWrite, node, r.Name);
            }
        }

        // Unpaired MOVED_FROM: the directory left the tree (unless a walk already found it at its new place inside,
        // or the name now holds it again).
        foreach (var left in movedFrom.Values)
        {
            if (_byWd.ContainsKey(left.Wd) && !IsWatchedAtItsPath(left))
            {
                RemoveSubtree(left);
            }
        }

        if (overflowed)
        {
            Resynchronize();
        }
    }

    private void DirectoryAppeared(Node parent, string name)
    {
        var root = parent.RootState;
        if (!root.Recursive)
        {
            return; // a non-recursive root tracks only itself
        }

        // If a node of that name exists, the walk keeps it when the inode is the same and replaces it otherwise.
        // (Never probe with a separate add_watch here: a watch added for a path that then vanishes would leak.)
        Walk(root, parent, name, Combine(parent.GetPath(), name), report: true, failFast: false);
    }

    private void Relink(Node moved, Node newParent, string newName)
    {
        var oldPath = moved.GetPath();
        moved.Parent!.RemoveChild(moved);
        if (newParent.FindChild(newName) is { } clash && clash != moved)
        {
            RemoveSubtree(clash);
        }

        moved.Name = newName;
        moved.Parent = newParent;
        newParent.AddChild(moved);
        var newPath = moved.GetPath();
        if (IsExcluded(newPath, newParent.RootState) || !newParent.RootState.Recursive)
        {
            RemoveSubtree(moved, pathOverride: newPath);
            return;
        }

        moved.Root = null; // a relinked directory belongs to its new parent's root
        Emit(DirectoryTreeEventKind.DirectoryMoved, newPath, oldPath);

        // Parts of the moved subtree may now lie under an exclusion.
        if (_excludes.Length > 0)
        {
            foreach (var n in moved.Descendants().ToList())
            {
                if (_byWd.ContainsKey(n.Wd) && IsExcluded(n.GetPath(), newParent.RootState))
                {
                    RemoveSubtree(n);
                }
            }
        }
    }

    private void WatchGone(Node node)
    {
        if (_byWd.TryGetValue(node.Wd, out var current) && current == node)
        {
            if (node.Parent is null && node.Root is { } root)
            {
                LoseRoot(root);
            }
            else
            {
                RemoveSubtree(node, watchAlreadyGone: true);
            }
        }
    }

    private void LoseRoot(RootState root)
    {
        if (root.Node is null)
        {
            return;
        }

        RemoveSubtree(root.Node);
        root.Node = null;
        Log.RootLost(_logger, root.Path);
        Emit(DirectoryTreeEventKind.RootLost, root.Path);
        WatchParent(root);
    }

    private void RestoreRoot(RootState root)
    {
        Walk(root, null, root.Path, root.Path, report: true, failFast: false);
        if (root.Node is not null)
        {
            Log.RootRestored(_logger, root.Path);
            Emit(DirectoryTreeEventKind.RootRestored, root.Path);
        }
    }

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

    /// <summary>Rebuilds the tree from the roots after lost events: adds what is new, removes what is gone.</summary>
    private void Resynchronize()
    {
        Interlocked.Increment(ref _overflows);
        Log.Overflowed(_logger);
        Emit(DirectoryTreeEventKind.Overflowed, string.Empty);
        _mountPoints = MountTable.Read();
        var generation = ++_generation;
        var before = _byWd.Count;
        var added = 0;
        foreach (var root in _roots)
        {
            var countBefore = _byWd.Count;
            if (root.Node is null)
            {
                RestoreRoot(root);
            }
            else
            {
                Walk(root, null, root.Path, root.Path, report: true, failFast: false, generation);
            }

            added += _byWd.Count - countBefore;
        }

        var stale = _byWd.Values.Where(n => n.Seen != generation).ToList();
        foreach (var n in stale)
        {
            if (_byWd.TryGetValue(n.Wd, out var current) && current == n)
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

    /// <summary>
    /// Adds <paramref name="path"/> and, for a recursive root, everything below it: each directory is watched first
    /// and enumerated after, so nothing created in between escapes. Excluded directories are pruned before a watch.
    /// </summary>
    private void Walk(RootState root, Node? parent, string name, string path, bool report, bool failFast, int generation = -1)
    {
        var stack = new Stack<(Node? Parent, string Name, string Path)>();
        stack.Push((parent, name, path));
        while (stack.Count > 0)
        {
            var (p, n, full) = stack.Pop();
            if (IsExcluded(full, root))
            {
                continue;
            }

            var wd = AddWatch(full, out var error);
            if (wd < 0)
            {
                if (error.RawErrno is Interop.Errno.ENOENT or Interop.Errno.ENOTDIR or Interop.Errno.ELOOP or Interop.Errno.EACCES)
                {
                    continue; // gone, replaced by a file, or a symbolic link (never followed): a benign race
                }

                if (failFast && error.RawErrno == Interop.Errno.ENOSPC)
                {
                    throw new WatchLimitException(full, error, _byWd.Count);
                }

                var reason = error.RawErrno == Interop.Errno.ENOSPC
                    ? $"the watch limit fs.inotify.max_user_watches ({Interop.ReadSysctl("/proc/sys/fs/inotify/max_user_watches")}) is reached; raise it with sysctl"
                    : error.ToString();
                Log.WatchFailed(_logger, full, reason);
                _outbox.Add(new DirectoryTreeEvent(DirectoryTreeEventKind.WatchFailed, full, Reason: reason));
                continue;
            }

            if (p is null && root.Node is { } previous && previous.Wd != wd)
            {
                RemoveSubtree(previous); // the root directory itself was replaced
            }

            Node node;
            var isNew = false;
            if (_byWd.TryGetValue(wd, out var known))
            {
                if (known.Parent == p && (p is not null || known.Root == root) && (p is null || known.Name == n))
                {
                    node = known; // already tracked (a resynchronisation, or a directory seen twice)
                }
                else if (IsWatchedAtItsPath(known))
                {
                    continue; // the same inode under another name as well (a bind mount): tracked once
                }
                else
                {
                    // Found here by a walk before its move was reported (it moved into a directory whose watch did
                    // not exist yet, so no MOVED_TO will ever come): follow it now, or the unpaired MOVED_FROM would
                    // drop a directory that is still in the tree.
                    if (p is null || known.Parent is null || p == known || p.IsDescendantOf(known) || (known.Parent == p && known.Name == n))
                    {
                        continue;
                    }

                    Relink(known, p, n);
                    if (!_byWd.ContainsKey(wd))
                    {
                        continue;
                    }

                    node = known;
                }
            }
            else
            {
                if (p?.FindChild(n) is { } replaced)
                {
                    RemoveSubtree(replaced); // another directory now stands at this name
                }

                node = new Node(n, p, wd);
                isNew = true;
                if (p is null)
                {
                    node.Root = root;
                    root.Node = node;
                }
                else
                {
                    p.AddChild(node);
                }

                _byWd[wd] = node;
                if (report)
                {
                    Emit(DirectoryTreeEventKind.DirectoryAdded, full);
                }

                if (p is not null && _mountPoints.Contains(full))
                {
                    Log.NestedMount(_logger, full);
                    Emit(DirectoryTreeEventKind.NestedMount, full);
                }
            }

            node.Seen = generation;
            var descend = root.Recursive;
            foreach (var (entry, isDirectory) in Enumerate(full))
            {
                if (isDirectory)
                {
                    if (descend)
                    {
                        stack.Push((node, entry, Combine(full, entry)));
                    }
                }
                else if (report && isNew && _options.ReportFiles)
                {
                    Emit(DirectoryTreeEventKind.FileCreated, Combine(full, entry));
                }
            }
        }
    }

    /// <summary>
    /// Whether the node's recorded path still leads to the node's own directory: events name entries, not inodes, so
    /// a DELETE or MOVED_FROM may concern an earlier directory of that name. Probes with add_watch (which returns the
    /// existing descriptor for a watched inode) and undoes any watch the probe itself created.
    /// </summary>
    private bool IsWatchedAtItsPath(Node node)
    {
        var wd = Interop.Inotify.AddWatch(_fd!, node.GetPath(), _mask);
        if (wd < 0)
        {
            return false;
        }

        if (wd == node.Wd)
        {
            return true;
        }

        if (!_byWd.ContainsKey(wd) && !_rootParents.ContainsKey(wd))
        {
            Interop.Inotify.RemoveWatch(_fd!, wd);
        }

        return false;
    }

    private int AddWatch(string path, out Interop.ErrorInfo error)
    {
        var wd = Interop.Inotify.AddWatch(_fd!, path, _mask);
        error = wd < 0 ? Interop.ErrorInfo.Last() : default;
        return wd;
    }

    private void RemoveSubtree(Node node, bool watchAlreadyGone = false, string? pathOverride = null)
    {
        var path = pathOverride ?? node.GetPath();
        var stack = new Stack<(Node Node, string Path)>();
        var order = new List<(Node Node, string Path)>();
        stack.Push((node, path));
        while (stack.Count > 0)
        {
            var (n, p) = stack.Pop();
            order.Add((n, p));
            foreach (var child in n.Children)
            {
                stack.Push((child, Combine(p, child.Name)));
            }
        }

        // Children first, so a consumer drops marks bottom-up.
        for (var i = order.Count - 1; i >= 0; i--)
        {
            var (n, p) = order[i];
            if (_byWd.TryGetValue(n.Wd, out var current) && current == n)
            {
                _byWd.Remove(n.Wd);
                if (!(watchAlreadyGone && n == node))
                {
                    Interop.Inotify.RemoveWatch(_fd!, n.Wd); // EINVAL when the kernel already dropped it: fine
                }

                Emit(DirectoryTreeEventKind.DirectoryRemoved, p);
            }
        }

        node.Parent?.RemoveChild(node);
        if (node.Parent is null && node.Root is { } root && root.Node == node)
        {
            root.Node = null;
        }
    }

    private void EmitFile(DirectoryTreeEventKind kind, Node parent, string name)
    {
        if (_options.ReportFiles)
        {
            var path = Combine(parent.GetPath(), name);
            if (!IsExcluded(path, parent.RootState))
            {
                Emit(kind, path);
            }
        }
    }

    private void Emit(DirectoryTreeEventKind kind, string path, string? oldPath = null) =>
        _outbox.Add(new DirectoryTreeEvent(kind, path, oldPath));

    /// <summary>
    /// Whether an exclusion covers <paramref name="path"/>. An exclusion that also covers the root does not apply to
    /// it: such a root is an include nested below an exclusion on purpose.
    /// </summary>
    private bool IsExcluded(string path, RootState root)
    {
        foreach (var e in _excludes)
        {
            if (PathPrefix.IsSameOrUnder(path, e) && !PathPrefix.IsSameOrUnder(root.Path, e))
            {
                return true;
            }
        }

        return false;
    }



    private int CountDirectories(RootState root, string fromPath)
    {
        var count = 0;
        var stack = new Stack<string>();
        stack.Push(fromPath);
        while (stack.Count > 0)
        {
            var path = stack.Pop();
            if (IsExcluded(path, root))
            {
                continue;
            }

            count++;
            if (root.Recursive)
            {
                foreach (var (entry, isDirectory) in Enumerate(path))
                {
                    if (isDirectory)
                    {
                        stack.Push(Combine(path, entry));
                    }
                }
            }
        }

        return count;
    }

    private static List<(string Name, bool IsDirectory)> Enumerate(string path)
    {
        var options = new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true, RecurseSubdirectories = false, ReturnSpecialDirectories = false };
        try
        {
            return new FileSystemEnumerable<(string, bool)>(path, (ref FileSystemEntry e) => (e.FileName.ToString(), e.IsDirectory && (e.Attributes & FileAttributes.ReparsePoint) == 0), options).ToList();
        }
        catch (Exception e) when (e is DirectoryNotFoundException or IOException or UnauthorizedAccessException)
        {
            return []; // vanished (or became unreadable) after its watch was added: a benign race
        }
    }

    private static string Combine(string directory, string name) => directory == "/" ? "/" + name : directory + "/" + name;

    private static string TrimSlash(string path) => path.Length > 1 ? path.TrimEnd('/') : path;

    private sealed class RootState(string path, bool recursive)
    {
        public string Path { get; } = path;

        public bool Recursive { get; } = recursive;

        public Node? Node { get; set; }

        public int ParentWd { get; set; } = -1;
    }

    /// <summary>One tracked directory: its name within its parent, its parent, its watch.</summary>
    private sealed class Node(string name, Node? parent, int wd)
    {
        private const int ArrayLimit = 16;

        // Children: null, one Node, a Node[] (up to 16, with null slots), or a Dictionary beyond that. Most
        // directories have few subdirectories; this keeps the tree near 100 bytes of managed memory per directory.
        private object? _children;

        public string Name { get; set; } = name;

        public Node? Parent { get; set; } = parent;

        public int Wd { get; } = wd;

        public int Seen { get; set; } = -1;

        /// <summary>Set on root nodes only; every other node belongs to its parent's root.</summary>
        public RootState? Root { get; set; }

        public RootState RootState
        {
            get
            {
                for (var n = this; ; n = n.Parent)
                {
                    if (n.Root is { } r)
                    {
                        return r;
                    }

                    if (n.Parent is null)
                    {
                        throw new InvalidOperationException("A tracked directory has no root.");
                    }
                }
            }
        }

        public IEnumerable<Node> Children => _children switch
        {
            null => [],
            Node single => [single],
            Node[] few => few.Where(c => c is not null),
            Dictionary<string, Node> many => many.Values,
            _ => [],
        };

        public Node? FindChild(string name)
        {
            switch (_children)
            {
                case Node single when single.Name == name:
                    return single;
                case Node[] few:
                    foreach (var c in few)
                    {
                        if (c is not null && c.Name == name)
                        {
                            return c;
                        }
                    }

                    return null;
                case Dictionary<string, Node> many:
                    return many.GetValueOrDefault(name);
                default:
                    return null;
            }
        }

        public void AddChild(Node child)
        {
            switch (_children)
            {
                case null:
                    _children = child;
                    break;
                case Node single:
                    _children = new Node[] { single, child, null!, null! };
                    break;
                case Node[] few:
                    var free = Array.IndexOf(few, null);
                    if (free >= 0)
                    {
                        few[free] = child;
                    }
                    else if (few.Length < ArrayLimit)
                    {
                        var grown = new Node[few.Length * 2];
                        few.CopyTo(grown, 0);
                        grown[few.Length] = child;
                        _children = grown;
                    }
                    else
                    {
                        var many = new Dictionary<string, Node>(few.Length * 2, StringComparer.Ordinal);
                        foreach (var c in few)
                        {
                            many[c.Name] = c;
                        }

                        many[child.Name] = child;
                        _children = many;
                    }

                    break;
                case Dictionary<string, Node> many:
                    many[child.Name] = child;
                    break;
            }
        }

        public void RemoveChild(Node child)
        {
            switch (_children)
            {
                case Node single when single == child:
                    _children = null;
                    break;
                case Node[] few:
                    var i = Array.IndexOf(few, child);
                    if (i >= 0)
                    {
                        few[i] = null!;
                    }

                    break;
                case Dictionary<string, Node> many:
                    if (many.TryGetValue(child.Name, out var found) && found == child)
                    {
                        many.Remove(child.Name);
                    }

                    break;
            }
        }

        public bool IsDescendantOf(Node ancestor)
        {
            for (var n = Parent; n is not null; n = n.Parent)
            {
                if (n == ancestor)
                {
                    return true;
                }
            }

            return false;
        }

        public IEnumerable<Node> Descendants()
        {
            var stack = new Stack<Node>(Children);
            while (stack.Count > 0)
            {
                var n = stack.Pop();
                yield return n;
                foreach (var c in n.Children)
                {
                    stack.Push(c);
                }
            }
        }

        public string GetPath()
        {
            if (Parent is null)
            {
                return Root?.Path ?? Name;
            }

            var parts = new List<string>();
            var n = this;
            while (n.Parent is not null)
            {
                parts.Add(n.Name);
                n = n.Parent;
            }

            parts.Reverse();
            var rootPath = n.Root?.Path ?? n.Name;
            return (rootPath == "/" ? string.Empty : rootPath) + "/" + string.Join('/', parts);
        }
    }

    private sealed class WatchLimitException(string path, Interop.ErrorInfo error, int watched) : Exception
    {
        public string Path { get; } = path;

        public Interop.ErrorInfo Error { get; } = error;

        public int Watched { get; } = watched;
    }
}
