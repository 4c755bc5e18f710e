using System.Buffers;
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
/// <para>
/// The parts, all used under that lock and sharing a <see cref="TreeContext"/>: <see cref="TreeWalker"/> (walking and
/// attaching), <see cref="TreeChanges"/> (applying a batch of records), <see cref="TreeRemoval"/> (taking subtrees out
/// and unprotecting them), <see cref="TreeRetries"/> (what could not be protected, tried again),
/// <see cref="TreeRecovery"/> (lost roots, overflows) and <see cref="DirectoryOpener"/> (finding a directory again).
/// This type is the lifecycle: start, the reading and processing loop, re-protection requests, disposal.
/// </para>
/// </remarks>
public sealed class DirectoryTree : IAsyncDisposable
{
    private const uint DirectoryMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;

    private readonly TreeContext _t;
    private readonly Channel<DirectoryTreeEvent> _events;
    private readonly ConcurrentQueue<ReprotectRequest> _requests = new();
    private readonly Lock _gate = new();
    private KernelReadPump? _pump;
    private Task? _processing;
    private Timer? _retryTimer;
    private volatile bool _disposing;

    /// <summary>Creates a tracker; nothing is watched until <see cref="Start"/>.</summary>
    /// <param name="options">Roots, exclusions, file reporting, the handler.</param>
    /// <param name="logger">Where overflows, lost roots and watch failures are logged.</param>
    public DirectoryTree(DirectoryTreeOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.EventCapacity, 1);
        _t = new TreeContext(options, logger ?? NullLogger.Instance, DirectoryMask | (options.ReportFiles ? IN_CLOSE_WRITE : 0));
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
                return _t.ByWd.Count;
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
                return _t.Retries.Count;
            }
        }
    }

    /// <summary>Kernel queue overflows seen.</summary>
    public long OverflowCount => Interlocked.Read(ref _t.Overflows);

    /// <summary>Directories that could not be watched or protected, each counted once when it first failed.</summary>
    public long WatchFailureCount => Interlocked.Read(ref _t.WatchFailures);

    /// <summary>The inotify descriptor's number (for diagnostics such as /proc/self/fdinfo).</summary>
    internal int DescriptorNumber => _t.Fd?.Number ?? -1;

    internal KernelReadPump? Pump => _pump;

    /// <summary>Every watch descriptor this tracker holds: one per directory plus the watches on lost-root parents.</summary>
    internal HashSet<int> GetWatchDescriptors()
    {
        lock (_gate)
        {
            var result = new HashSet<int>(_t.ByWd.Keys);
            result.UnionWith(_t.RootParents.Keys);
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
        if (_t.Fd is not null)
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

        var inotify = _t.Fd = new SafeDescriptorHandle(fd);
        lock (_gate)
        {
            try
            {
                foreach (var root in _t.Roots)
                {
                    _t.Recovery.WatchParent(root);
                    _t.Walker.WalkRoot(root, report: false, failFast: true);
                    if (root.Node is null && !_t.Retries.HasRoot(root))
                    {
                        _t.Emit(DirectoryTreeEventKind.RootLost, root.Path);
                    }
                }
            }
            catch (WatchLimitException limit)
            {
                var needed = _t.Walker.CountDirectories();
                _t.Opener.CloseAll();
                inotify.Dispose();
                throw Interop.GetExceptionForError(limit.Error, "inotify_add_watch", limit.Path, $"The per-user watch limit fs.inotify.max_user_watches is {Interop.ReadSysctl("/proc/sys/fs/inotify/max_user_watches")}, shared by every process of this user; the roots need {needed} directories watched (plus one watch per root's parent). Raise it with sysctl (for example sysctl fs.inotify.max_user_watches={Math.Max(needed * 2, 65536)}).");
            }
            catch
            {
                _t.Opener.CloseAll();
                inotify.Dispose();
                throw;
            }
            finally
            {
                _t.Opener.CloseAll();
            }
        }

        _retryTimer = new Timer(_ => WakeUp());
        _pump = new KernelReadPump(inotify, "OnAccess inotify reader", static (_, _) => ReadFailureAction.Stop);
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
            return [.. _t.ByWd.Values.Select(n => Encoding.UTF8.GetString(n.GetPath()))];
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

        var request = new ReprotectRequest(before);
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

        _t.Fd?.Dispose();
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
                        _t.Changes.Apply(batch);
                        _t.Retries.RunDue();
                        RunRequests();
                    }
                    finally
                    {
                        _t.Opener.CloseAll();
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
            if (_t.Outbox.Count == 0)
            {
                return;
            }

            pending = [.. _t.Outbox];
            _t.Outbox.Clear();
        }

        foreach (var e in pending)
        {
            await _events.Writer.WriteAsync(e).ConfigureAwait(false);
        }
    }

    private void ScheduleRetries()
    {
        if (!_disposing && _retryTimer is not null)
        {
            _t.Retries.Schedule(_retryTimer);
        }
    }

    /// <summary>Hands every tracked directory to the handler again, for each <see cref="ReprotectAsync"/> waiting.</summary>
    private void RunRequests()
    {
        while (_requests.TryDequeue(out var request))
        {
            try
            {
                request.Before?.Invoke();
                foreach (var node in _t.ByWd.Values.ToList())
                {
                    _t.Opener.Trim();
                    if (!_t.IsTracked(node) || _t.Handler is null)
                    {
                        continue;
                    }

                    var path = node.GetPath();
                    if (_t.Opener.GetOpen(node) is not { } fd)
                    {
                        continue; // gone meanwhile: its own events follow
                    }

                    try
                    {
                        _t.Handler.DirectoryAdded(new TrackedDirectory(fd, node.Id.Device, node.Id.Inode, () => path));
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or InvalidOperationException)
                    {
                        // Not protected in the new place: take it out of the tree and try it again like any failure.
                        var parent = node.Parent;
                        var root = node.RootState;
                        _t.Removal.RemoveSubtree(node, gone: true);
                        _t.Retries.RecordFailure(root, parent, parent is null ? root.PathBytes : node.Name, path, e.Message);
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
}
