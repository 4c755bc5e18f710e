using System.Buffers;
using System.Runtime.InteropServices;
using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnAccess.Kernel;
using static Interop.InotifyConstants;

namespace OnAccess.Inotify;

/// <summary>
/// A live picture of every directory under a set of roots, kept on inotify: what fanotify's non-recursive
/// directory marks need to cover a tree ("Dynamic Directory Determination"). A dedicated thread reads the kernel's
/// records into a pipe; a processing loop applies them to a tree of nodes and publishes
/// <see cref="DirectoryTreeEvent"/>s, in order, on <see cref="Events"/>, and hands every directory and file it
/// tracks to <see cref="DirectoryTreeOptions.Handler"/> through a descriptor of that very object.
/// </summary>
/// <remarks>
/// <para>
/// Names are bytes and directories are descriptors: every directory is opened relative to its parent's descriptor
/// (O_DIRECTORY | O_NOFOLLOW), watched through that descriptor (/proc/self/fd/N) and known afterwards by device, inode
/// and file handle, never by a path string that could be resolved again. So a name that is not UTF-8, a path longer
/// than PATH_MAX, or a symbolic link swapped in for a directory mid-walk changes nothing: what is watched, protected and
/// later unprotected is the directory that was found, wherever it has moved since.
/// </para>
/// <para>
/// Guarantees: a new directory is watched and protected before it is enumerated, so directories and files made inside
/// it before its watch existed are reported too; exclusions are applied before a watch is added, also to directories
/// created or moved in later; moves are paired by cookie (unpaired halves are resolved at the end of a batch); a
/// directory that could not be watched or protected is tried again with backoff until it is, and counted meanwhile
/// (<see cref="UnprotectedCount"/>); a queue overflow rebuilds the tree from the roots and reports the differences; a
/// lost root is watched for and restored. Lock order: <c>_gate</c> guards the tree; the handler is called under it.
/// </para>
/// </remarks>
public sealed partial class DirectoryTree : IAsyncDisposable
{
    private const uint DirectoryMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;
    private const uint RootParentMask = IN_CREATE | IN_MOVED_TO | IN_ONLYDIR | IN_MASK_ADD;

    private readonly DirectoryTreeOptions _options;
    private readonly IDirectoryTreeHandler? _handler;
    private readonly ILogger _logger;
    private readonly byte[][] _excludes;
    private readonly List<RootState> _roots;
    private readonly Dictionary<int, TreeNode> _byWd = [];
    private readonly Dictionary<int, List<RootState>> _rootParents = [];
    private readonly Channel<DirectoryTreeEvent> _events;
    private readonly List<DirectoryTreeEvent> _outbox = [];
    private readonly ConcurrentQueue<Request> _requests = new();
    private readonly Lock _gate = new();
    private readonly uint _mask;
    private SafeDescriptorHandle? _fd;
    private KernelReadPump? _pump;
    private Task? _processing;
    private Timer? _retryTimer;
    private volatile bool _disposing;
    private int _generation;
    private long _overflows;
    private long _watchFailures;

    /// <summary>Creates a tracker; nothing is watched until <see cref="Start"/>.</summary>
    /// <param name="options">Roots, exclusions, file reporting, the handler.</param>
    /// <param name="logger">Where overflows, lost roots and watch failures are logged.</param>
    public DirectoryTree(DirectoryTreeOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.EventCapacity, 1);
        _options = options;
        _handler = options.Handler;
        _logger = logger ?? NullLogger.Instance;
        _excludes = [.. options.ExcludePaths.Select(p => Encoding.UTF8.GetBytes(TrimSlash(p)))];
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

    /// <summary>
    /// How many directories (each with its subtree) could not be watched or protected and are waiting to be tried
    /// again: 0 when everything under the roots is covered.
    /// </summary>
    public int UnprotectedCount
    {
        get
        {
            lock (_gate)
            {
                return _retries.Count;
            }
        }
    }

    /// <summary>Kernel queue overflows seen.</summary>
    public long OverflowCount => Interlocked.Read(ref _overflows);

    /// <summary>Directories that could not be watched or protected, each counted once when it first failed.</summary>
    public long WatchFailureCount => Interlocked.Read(ref _watchFailures);

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
    /// pruned before their watch) and handing each to the handler, and starts reading. Directories found now are in
    /// <see cref="GetDirectories"/>; only later changes are reported.
    /// </summary>
    /// <exception cref="IOException">The watch or instance limit is reached (the message names the sysctl, its value and
    /// how many directories the roots need), or a root cannot be protected.</exception>
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
            try
            {
                foreach (var root in _roots)
                {
                    WatchParent(root);
                    WalkRoot(root, report: false, failFast: true);
                    if (root.Node is null && !_retries.Keys.Any(k => k.Root == root))
                    {
                        Emit(DirectoryTreeEventKind.RootLost, root.Path);
                    }
                }
            }
            catch (WatchLimitException limit)
            {
                var needed = CountDirectories();
                CloseOpenDirectories();
                _fd.Dispose();
                throw Interop.GetExceptionForError(limit.Error, "inotify_add_watch", limit.Path, $"The per-user watch limit fs.inotify.max_user_watches is {Interop.ReadSysctl("/proc/sys/fs/inotify/max_user_watches")}, shared by every process of this user; the roots need {needed} directories watched (plus one watch per root's parent). Raise it with sysctl (for example sysctl fs.inotify.max_user_watches={Math.Max(needed * 2, 65536)}).");
            }
            catch
            {
                CloseOpenDirectories();
                _fd.Dispose();
                throw;
            }
            finally
            {
                CloseOpenDirectories();
            }
        }

        _retryTimer = new Timer(_ => WakeUp());
        _pump = new KernelReadPump(_fd, "OnAccess inotify reader", static (_, _) => ReadFailureAction.Stop);
        _pump.Start();
        _processing = Task.Run(ProcessAsync);
        lock (_gate)
        {
            ScheduleRetries();
        }
    }

    /// <summary>A snapshot of every tracked directory's path (for messages: bytes that are not UTF-8 show as U+FFFD).</summary>
    /// <returns>The paths, roots first, in no particular order after that.</returns>
    public IReadOnlyList<string> GetDirectories()
    {
        lock (_gate)
        {
            return [.. _byWd.Values.Select(n => Encoding.UTF8.GetString(n.GetPath()))];
        }
    }

    /// <summary>
    /// Hands every tracked directory to the handler again (<see cref="IDirectoryTreeHandler.DirectoryAdded"/>), on
    /// the tracker's thread, after <paramref name="before"/> has run there: for example to protect them all again
    /// in a new fanotify group, switched to by <paramref name="before"/> so that nothing created meanwhile is missed.
    /// </summary>
    /// <param name="before">Runs first, on the tracker's thread, with no change applied in between.</param>
    /// <returns>A task that completes when every directory has been handed over.</returns>
    public Task ReprotectAsync(Action? before = null)
    {
        ObjectDisposedException.ThrowIf(_disposing, this);
        if (_pump is null)
        {
            throw new InvalidOperationException("The tree is not started.");
        }

        var request = new Request(before);
        _requests.Enqueue(request);
        WakeUp();
        return request.Completion.Task;
    }

    /// <summary>Stops reading and releases every watch.</summary>
    /// <returns>A task that completes when the processing loop has ended.</returns>
    public async ValueTask DisposeAsync()
    {
        _disposing = true;
        if (_retryTimer is not null)
        {
            await _retryTimer.DisposeAsync().ConfigureAwait(false);
        }

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

        while (_requests.TryDequeue(out var request))
        {
            request.Completion.TrySetCanceled();
        }

        _fd?.Dispose();
        _events.Writer.TryComplete();
    }

    private void WakeUp()
    {
        try
        {
            _pump?.Reader.CancelPendingRead();
        }
        catch (InvalidOperationException)
        {
            // the pipe is already completed: the loop is ending
        }
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
                    try
                    {
                        Apply(batch);
                        RunDueRetries();
                        RunRequests();
                    }
                    finally
                    {
                        CloseOpenDirectories();
                        ScheduleRetries();
                    }
                }

                batch.Clear();
                await FlushOutboxAsync().ConfigureAwait(false);
                if (result.IsCompleted || _disposing)
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
        var movedFrom = new Dictionary<uint, TreeNode>();
        var overflowed = false;
        foreach (var r in batch)
        {
            TrimOpenDirectories();
            if ((r.Mask & IN_Q_OVERFLOW) != 0)
            {
                overflowed = true;
                continue;
            }

            if (_rootParents.TryGetValue(r.Wd, out var waiting) && (r.Mask & (IN_CREATE | IN_MOVED_TO)) != 0 && (r.Mask & IN_ISDIR) != 0)
            {
                foreach (var root in waiting.ToList())
                {
                    if (root.Node is null && root.NameBytes.AsSpan().SequenceEqual(r.Name))
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
                if (node.Parent is null && node.Root is { } lostRoot && !IsAtItsPlace(node))
                {
                    LoseRoot(lostRoot, gone: (r.Mask & IN_DELETE_SELF) != 0); // moved away: it still exists, unprotect it
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
                    FileEvent(DirectoryTreeEventKind.FileCreated, node, null, r.Name);
                }
            }

            // Events name entries, not inodes: only a node that is no longer in its parent under that name is the
            // one that moved (the name may already hold a newer directory a walk found).
            if ((r.Mask & IN_MOVED_FROM) != 0 && isDir && node.FindChild(r.Name) is { } leaving && !IsAtItsPlace(leaving))
            {
                movedFrom[r.Cookie] = leaving;
            }

            if ((r.Mask & IN_MOVED_TO) != 0)
            {
                if (!isDir)
                {
                    FileEvent(DirectoryTreeEventKind.FileMovedIn, node, null, r.Name);
                }
                else if (movedFrom.Remove(r.Cookie, out var moved) && IsTracked(moved))
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

            if ((r.Mask & IN_DELETE) != 0 && isDir && node.FindChild(r.Name) is { } deleted && !IsAtItsPlace(deleted))
            {
                RemoveSubtree(deleted);
            }

            if ((r.Mask & IN_CLOSE_WRITE) != 0 && !isDir)
            {
                FileEvent(DirectoryTreeEventKind.FileClosedWrite, node, null, r.Name);
            }
        }

        // Unpaired MOVED_FROM: the directory left the tree (unless a walk already found it at its new place inside,
        // or the name holds it again).
        foreach (var left in movedFrom.Values)
        {
            if (IsTracked(left) && !IsAtItsPlace(left))
            {
                RemoveSubtree(left);
            }
        }

        if (overflowed)
        {
            Resynchronize();
        }
    }

    private void DirectoryAppeared(TreeNode parent, byte[] name)
    {
        var root = parent.RootState;
        if (!root.Recursive)
        {
            return; // a non-recursive root tracks only itself
        }

        var path = Combine(parent.GetPath(), name);
        if (IsExcluded(path, root) || GetOpen(parent) is not { } parentFd)
        {
            return; // excluded, or the parent itself is gone (its own events follow)
        }

        var fd = Descriptors.OpenDirectory(parentFd, name, out var errno);
        if (fd is null)
        {
            if (!IsBenignOpenError(errno))
            {
                RecordFailure(root, parent, name, path, Interop.ErrorInfo.FromErrno(errno).ToString());
            }

            return; // gone, replaced by a file, or a symbolic link (never followed)
        }

        // If a node of that name exists, the walk keeps it when the inode is the same and replaces it otherwise.
        Walk(root, parent, fd, name, path, report: true, failFast: false, generation: -1);
    }

    private void Relink(TreeNode moved, TreeNode newParent, byte[] newName)
    {
        if (newParent == moved || newParent.IsDescendantOf(moved) || moved.Parent is null)
        {
            // The filesystem cannot hold this (rename refuses to move a directory into itself): the tree is behind.
            // Start this part over from what is on disk.
            RemoveSubtree(moved);
            DirectoryAppeared(newParent, newName);
            return;
        }

        var oldPath = moved.GetPath();
        moved.Parent.RemoveChild(moved);
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
            RemoveSubtree(moved);
            return;
        }

        moved.Root = null; // a relinked directory belongs to its new parent's root
        Emit(DirectoryTreeEventKind.DirectoryMoved, newPath, oldPath);

        // Parts of the moved subtree may now lie under an exclusion.
        if (_excludes.Length > 0)
        {
            foreach (var n in moved.SelfAndDescendants().Skip(1))
            {
                if (IsTracked(n) && IsExcluded(n.GetPath(), newParent.RootState))
                {
                    RemoveSubtree(n);
                }
            }
        }
    }

    private void WatchGone(TreeNode node)
    {
        if (IsTracked(node))
        {
            if (node.Parent is null && node.Root is { } root)
            {
                LoseRoot(root, gone: true);
            }
            else
            {
                RemoveSubtree(node, gone: true);
            }
        }
    }

    /// <summary>
    /// Stops tracking a directory and its subtree, children first. Each directory that still exists is found again by
    /// its file handle and handed to the handler to be unprotected, wherever it has moved; when the kernel reported the
    /// top one gone (deleted or unmounted: <paramref name="gone"/>), it is not looked for, and what cannot be found
    /// below it is taken as gone too.
    /// </summary>
    private void RemoveSubtree(TreeNode node, bool gone = false)
    {
        var order = node.SelfAndDescendants();
        var hint = node.Parent;
        for (var i = order.Count - 1; i >= 0; i--)
        {
            var n = order[i];
            if (!IsTracked(n))
            {
                continue;
            }

            var path = n.GetPath();
            _byWd.Remove(n.Wd);
            Interop.Inotify.RemoveWatch(_fd!, n.Wd); // EINVAL when the kernel already dropped it: fine
            if (!gone || n != node)
            {
                // Below a directory the kernel reports gone, a directory may have moved away just before (its
                // MOVED_FROM waiting in this batch): it still exists and is unprotected; those truly gone are not found.
                Unprotect(n, hint, path, mayBeGone: gone);
            }

            DropRetriesUnder(n);
            Emit(DirectoryTreeEventKind.DirectoryRemoved, path);
        }

        node.Parent?.RemoveChild(node);
        if (node.Parent is null && node.Root is { } root && root.Node == node)
        {
            root.Node = null;
        }
    }

    private void FileEvent(DirectoryTreeEventKind kind, TreeNode directory, SafeHandle? directoryFd, byte[] name)
    {
        if (!_options.ReportFiles)
        {
            return;
        }

        var path = Combine(directory.GetPath(), name);
        if (IsExcluded(path, directory.RootState))
        {
            return;
        }

        Emit(kind, path);
        if (_handler is null || (directoryFd ?? GetOpen(directory)) is not { } fd)
        {
            return;
        }

        if (Descriptors.OpenRegularFile(fd, name, out _) is { } file)
        {
            try
            {
                _handler.FileChanged(new TrackedFile(file, kind, path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or ObjectDisposedException)
            {
                file.Dispose();
            }
        }
    }

    private void Emit(DirectoryTreeEventKind kind, byte[] path, byte[]? oldPath = null) =>
        _outbox.Add(new DirectoryTreeEvent(kind, Encoding.UTF8.GetString(path), oldPath is null ? null : Encoding.UTF8.GetString(oldPath)));

    private void Emit(DirectoryTreeEventKind kind, string path, string? reason = null) =>
        _outbox.Add(new DirectoryTreeEvent(kind, path, Reason: reason));

    /// <summary>
    /// Whether an exclusion covers <paramref name="path"/>. An exclusion that also covers the root does not apply to
    /// it: such a root is an include nested below an exclusion on purpose.
    /// </summary>
    private bool IsExcluded(ReadOnlySpan<byte> path, RootState root)
    {
        foreach (var e in _excludes)
        {
            if (IsSameOrUnder(path, e) && !IsSameOrUnder(root.PathBytes, e))
            {
                return true;
            }
        }

        return false;
    }

    private bool IsTracked(TreeNode node) => _byWd.TryGetValue(node.Wd, out var current) && current == node;

    private static bool IsSameOrUnder(ReadOnlySpan<byte> path, ReadOnlySpan<byte> ancestor) =>
        ancestor.SequenceEqual("/"u8)
        || (path.StartsWith(ancestor) && (path.Length == ancestor.Length || path[ancestor.Length] == (byte)'/'));

    private static byte[] Combine(byte[] directory, ReadOnlySpan<byte> name)
    {
        var slash = directory is [(byte)'/'] ? 0 : 1;
        var path = new byte[directory.Length + slash + name.Length];
        directory.CopyTo(path, 0);
        if (slash == 1)
        {
            path[directory.Length] = (byte)'/';
        }

        name.CopyTo(path.AsSpan(directory.Length + slash));
        return path;
    }

    private static bool IsBenignOpenError(int errno) => errno is Interop.Errno.ENOENT or Interop.Errno.ENOTDIR or Interop.Errno.ELOOP;

    private static string TrimSlash(string path) => path.Length > 1 ? path.TrimEnd('/') : path;

    /// <summary>A configured root: its path as given (roots are the administrator's, not an attacker's, to name).</summary>
    internal sealed class RootState(string path, bool recursive)
    {
        public string Path { get; } = path;

        public byte[] PathBytes { get; } = Encoding.UTF8.GetBytes(path);

        public byte[] NameBytes { get; } = Encoding.UTF8.GetBytes(System.IO.Path.GetFileName(path));

        public bool Recursive { get; } = recursive;

        public TreeNode? Node { get; set; }

        public int ParentWd { get; set; } = -1;
    }

    private sealed class Request(Action? before)
    {
        public Action? Before { get; } = before;

        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class WatchLimitException(string path, Interop.ErrorInfo error) : Exception
    {
        public string Path { get; } = path;

        public Interop.ErrorInfo Error { get; } = error;
    }
}
