using System.IO.Pipelines;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OnAccess.Paths;
using static Interop.FanotifyConstants;

namespace OnAccess.Fanotify;

/// <summary>
/// A fanotify group (<c>fanotify_init</c>): its marks, its ignore marks, its event reader, and the channel through
/// which permission events are answered. Disposing it closes the group: the kernel then allows every access still
/// waiting for an answer, and later answers throw <see cref="ObjectDisposedException"/> instead of writing to a
/// recycled descriptor number.
/// </summary>
public sealed class FanotifyGroup : IDisposable
{
    private readonly SafeFanotifyHandle _handle;
    private readonly ILogger _logger;
    private FanotifyEventReader? _reader;
    private readonly FanotifyReadPath _reads;
    private volatile bool _readDirectly;
    private volatile bool _closing;
    private int _disposed;

    private FanotifyGroup(SafeFanotifyHandle handle, FanotifyGroupOptions options, ILogger logger)
    {
        _handle = handle;
        Options = options;
        _reads = new FanotifyReadPath(this, handle, options.ReadBufferSize); // as validated at creation, whatever the options say later
        _logger = logger;
    }

    /// <summary>The options the group was created with.</summary>
    public FanotifyGroupOptions Options { get; }

    /// <summary>Whether the group has been closed.</summary>
    public bool IsClosed => _handle.IsClosed;

    internal SafeFanotifyHandle Handle => _handle;

    internal ILogger Logger => _logger;

    /// <summary>Creates a group.</summary>
    /// <param name="options">How to create it; <see langword="null"/> for a notification group.</param>
    /// <param name="logger">Where warnings go (unanswered events, overflows).</param>
    /// <returns>The group.</returns>
    /// <exception cref="UnauthorizedAccessException">The process lacks CAP_SYS_ADMIN.</exception>
    /// <exception cref="NotSupportedException">The kernel lacks a requested feature.</exception>
    /// <exception cref="IOException">The group limit (<c>fs.fanotify.max_user_groups</c>) is reached, or another error.</exception>
    public static FanotifyGroup Create(FanotifyGroupOptions? options = null, ILogger? logger = null)
    {
        options ??= new FanotifyGroupOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ReadBufferSize, FanotifyGroupOptions.MinReadBufferSize, "options.ReadBufferSize");
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.ReadBufferSize, FanotifyGroupOptions.MaxReadBufferSize, "options.ReadBufferSize");
        var flags = options.Class switch
        {
            FanotifyClass.Content => FAN_CLASS_CONTENT,
            FanotifyClass.PreContent => FAN_CLASS_PRE_CONTENT,
            _ => FAN_CLASS_NOTIF,
        };
        flags |= options.CloseOnExec ? FAN_CLOEXEC : 0;
        flags |= options.NonBlocking ? FAN_NONBLOCK : 0;
        flags |= options.UnlimitedQueue ? FAN_UNLIMITED_QUEUE : 0;
        flags |= options.UnlimitedMarks ? FAN_UNLIMITED_MARKS : 0;
        flags |= options.ReportPidFd ? FAN_REPORT_PIDFD : 0;
        flags |= options.ReportThreadId ? FAN_REPORT_TID : 0;
        flags |= options.ReportDirectoryFidAndName ? FAN_REPORT_DFID_NAME : 0;
        flags |= options.EnableAudit ? FAN_ENABLE_AUDIT : 0;
        // O_LARGEFILE is implied: the kernel forces it for 64-bit processes.
        var eventFileFlags = (uint)(Interop.Libc.O_RDONLY | Interop.Libc.O_CLOEXEC);

        var fd = Interop.Fanotify.Init(flags, eventFileFlags);
        if (fd < 0)
        {
            var error = Interop.ErrorInfo.Last();
            throw error.RawErrno switch
            {
                Interop.Errno.EPERM => Interop.GetExceptionForError(error, "fanotify_init", advice: "fanotify needs CAP_SYS_ADMIN: run as root, or grant the capability (for example AmbientCapabilities=CAP_SYS_ADMIN in a systemd unit)."),
                Interop.Errno.EINVAL => new NotSupportedException($"fanotify_init failed: {error}. This kernel does not support a requested flag (pidfd reporting needs Linux 5.15, directory file-id reporting 5.9; a content class needs CONFIG_FANOTIFY_ACCESS_PERMISSIONS)."),
                Interop.Errno.EMFILE => Interop.GetExceptionForError(error, "fanotify_init", advice: $"The per-user group limit fs.fanotify.max_user_groups is {Interop.ReadSysctl("/proc/sys/fs/fanotify/max_user_groups")}; raise it with sysctl, or close other groups."),
                Interop.Errno.ENOSYS => new PlatformNotSupportedException($"fanotify_init failed: {error}. The kernel was built without CONFIG_FANOTIFY."),
                _ => Interop.GetExceptionForError(error, "fanotify_init"),
            };
        }

        return new FanotifyGroup(new SafeFanotifyHandle(fd), options, logger ?? NullLogger.Instance);
    }

    /// <summary>Adds events to the mark on a path's inode, mount or filesystem.</summary>
    /// <param name="path">An absolute path (relative paths resolve against the current directory).</param>
    /// <param name="events">The events to add.</param>
    /// <param name="options">Children, directories, only-directory, don't-follow.</param>
    /// <param name="target">What the mark attaches to.</param>
    public void AddMark(string path, FanotifyEvents events, FanotifyMarkOptions options = FanotifyMarkOptions.None, FanotifyMarkTarget target = FanotifyMarkTarget.Inode)
    {
        ArgumentNullException.ThrowIfNull(path);
        Mark(FAN_MARK_ADD, path, null, events, options, target);
    }

    /// <summary>Adds events to the mark on the inode (or its mount or filesystem) of an open descriptor.</summary>
    /// <param name="file">An open file or directory.</param>
    /// <param name="events">The events to add.</param>
    /// <param name="options">Children, directories.</param>
    /// <param name="target">What the mark attaches to.</param>
    public void AddMark(SafeHandle file, FanotifyEvents events, FanotifyMarkOptions options = FanotifyMarkOptions.None, FanotifyMarkTarget target = FanotifyMarkTarget.Inode)
    {
        ArgumentNullException.ThrowIfNull(file);
        Mark(FAN_MARK_ADD, null, file, events, options, target);
    }

    /// <summary>Removes events from the mark on a path; removing every event removes the mark.</summary>
    /// <param name="path">The path that was marked.</param>
    /// <param name="events">The events to remove (the same as were added, to remove the mark).</param>
    /// <param name="options">The same modifiers as were added.</param>
    /// <param name="target">What the mark is attached to.</param>
    /// <returns><see langword="false"/> when there was no such mark (or the path is gone).</returns>
    public bool RemoveMark(string path, FanotifyEvents events, FanotifyMarkOptions options = FanotifyMarkOptions.None, FanotifyMarkTarget target = FanotifyMarkTarget.Inode)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Mark(FAN_MARK_REMOVE, path, null, events, options, target, tolerateMissing: true);
    }

    /// <summary>Removes events from the mark on an open descriptor's inode (or mount or filesystem).</summary>
    /// <param name="file">The open file or directory.</param>
    /// <param name="events">The events to remove.</param>
    /// <param name="options">The same modifiers as were added.</param>
    /// <param name="target">What the mark is attached to.</param>
    /// <returns><see langword="false"/> when there was no such mark.</returns>
    public bool RemoveMark(SafeHandle file, FanotifyEvents events, FanotifyMarkOptions options = FanotifyMarkOptions.None, FanotifyMarkTarget target = FanotifyMarkTarget.Inode)
    {
        ArgumentNullException.ThrowIfNull(file);
        return Mark(FAN_MARK_REMOVE, null, file, events, options, target, tolerateMissing: true);
    }

    /// <summary>
    /// Makes the kernel stop reporting <paramref name="events"/> for one open file, so that a verdict can be cached in
    /// the kernel: without <see cref="FanotifyIgnoreOptions.SurviveModify"/> the first write clears it.
    /// Uses <c>FAN_MARK_IGNORE</c> where the kernel has it (6.0) and <c>FAN_MARK_IGNORED_MASK</c> before.
    /// </summary>
    /// <param name="file">The open file (for example a permission event's descriptor).</param>
    /// <param name="events">The events to ignore.</param>
    /// <param name="options">Survive modification; evictable.</param>
    /// <exception cref="NotSupportedException">An evictable mark was asked for on a kernel older than 5.19.</exception>
    public void AddIgnoreMark(SafeHandle file, FanotifyEvents events, FanotifyIgnoreOptions options = FanotifyIgnoreOptions.None)
    {
        ArgumentNullException.ThrowIfNull(file);
        var flags = FAN_MARK_ADD | IgnoreFlags(options);
        var modern = FanotifyCapabilities.Current.IgnoreMark;
        if ((options & FanotifyIgnoreOptions.Children) != 0 && !modern)
        {
            throw new NotSupportedException("An ignore mark for a directory's children needs FAN_MARK_IGNORE (Linux 6.0).");
        }

        flags |= modern ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;
        if (Interop.Fanotify.Mark(_handle, flags, IgnoreMask(events, options), file, null) != 0)
        {
            var error = Interop.ErrorInfo.Last();
            if (error.RawErrno == Interop.Errno.EINVAL && (options & FanotifyIgnoreOptions.Evictable) != 0)
            {
                throw new NotSupportedException($"fanotify_mark failed: {error}. Evictable marks need Linux 5.19.");
            }

            throw Interop.GetExceptionForError(error, "fanotify_mark (ignore)", advice: MarkLimitAdvice(error));
        }
    }

    /// <summary>Removes an ignore mark from one open file.</summary>
    /// <param name="file">The open file.</param>
    /// <param name="events">The ignored events to remove.</param>
    /// <param name="options">The same options as were added.</param>
    /// <returns><see langword="false"/> when there was no such mark.</returns>
    public bool RemoveIgnoreMark(SafeHandle file, FanotifyEvents events, FanotifyIgnoreOptions options = FanotifyIgnoreOptions.None)
    {
        ArgumentNullException.ThrowIfNull(file);
        var flags = FAN_MARK_REMOVE | IgnoreFlags(options & ~FanotifyIgnoreOptions.Evictable);
        flags |= FanotifyCapabilities.Current.IgnoreMark ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;
        if (Interop.Fanotify.Mark(_handle, flags, IgnoreMask(events, options), file, null) == 0)
        {
            return true;
        }

        var error = Interop.ErrorInfo.Last();
        return error.RawErrno == Interop.Errno.ENOENT ? false : throw Interop.GetExceptionForError(error, "fanotify_mark (remove ignore)");
    }

    /// <summary>Removes every mark of one kind (inode, mount or filesystem) from the group (<c>FAN_MARK_FLUSH</c>).</summary>
    /// <param name="target">Which kind of marks.</param>
    public void FlushMarks(FanotifyMarkTarget target = FanotifyMarkTarget.Inode)
    {
        if (Interop.Fanotify.Mark(_handle, FAN_MARK_FLUSH | TargetFlag(target), 0, Interop.Fanotify.AT_FDCWD, null) != 0)
        {
            throw Interop.GetExceptionForError(Interop.ErrorInfo.Last(), "fanotify_mark (flush)");
        }
    }

    /// <summary>
    /// Starts the group's reader: a dedicated thread that reads events (as <see cref="ReadEvents"/> does) and hands them
    /// to <see cref="FanotifyEventReader.ReadAllAsync"/>, which logs and counts overflows and failed reads. A group
    /// has at most one reader, and is read either this way or with <see cref="ReadEvents"/>.
    /// </summary>
    /// <returns>The reader; enumerate <see cref="FanotifyEventReader.ReadAllAsync"/>.</returns>
    internal FanotifyEventReader StartReading()
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        if (_readDirectly)
        {
            throw new InvalidOperationException("The group is read with ReadEvents; a pipeline reader would take its events.");
        }

        var reader = new FanotifyEventReader(this);
        if (Interlocked.CompareExchange(ref _reader, reader, null) is not null)
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw new InvalidOperationException("The group already has a reader.");
        }

        reader.Start();
        return reader;
    }

    /// <summary>
    /// Reads the events that are waiting, on the calling thread: it blocks until at least one arrives, reads every
    /// whole record one read(2) returns, and adds them to <paramref name="events"/>, in kernel order. For engines that
    /// dispatch on threads of their own (for example one whose reading thread also answers, with no hand-off);
    /// A group is read this way or with its internal awaitable reader, not both. Several threads may call it
    /// at once: each event goes to exactly one. Queue overflows, failed reads (one event each: the kernel has denied or
    /// dropped it) and records that cannot be parsed (EBADMSG) are returned as events, but not logged: this method
    /// runs no log sink on the reading thread, so the caller reports them where it likes.
    /// </summary>
    /// <remarks>
    /// What read(2) returns is written into a <see cref="Pipe"/> of the calling thread and parsed from it on the same
    /// thread (inline schedulers, no pause threshold): one wake-up, the kernel's, per read.
    /// </remarks>
    /// <param name="events">Where the events go; the caller owns (and must dispose) each one.</param>
    /// <param name="millisecondsTimeout">How long to wait for the first event; <see cref="Timeout.Infinite"/> (the
    /// default) waits until one comes or the group closes. When it passes, nothing is added.</param>
    /// <returns><see langword="false"/> once the group is closed (or closing): nothing more will come.</returns>
    /// <exception cref="InvalidOperationException">The group has a pipeline reader, or was not created non-blocking.</exception>
    /// <exception cref="IOException">poll(2) failed, or read(2) failed in a way that will not pass (EBADF, EFAULT).</exception>
    public bool ReadEvents(List<FanotifyEvent> events, int millisecondsTimeout = Timeout.Infinite)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentOutOfRangeException.ThrowIfLessThan(millisecondsTimeout, Timeout.Infinite);
        if (_reader is not null)
        {
            throw new InvalidOperationException("The group has a pipeline reader (StartReading); read its events there.");
        }

        if (!Options.NonBlocking)
        {
            throw new InvalidOperationException("ReadEvents needs a group created with NonBlocking, so that threads reading at once never block in read(2).");
        }

        _readDirectly = true;
        return _reads.Read(events, millisecondsTimeout);
    }

    /// <summary>
    /// Whether events wait in the kernel's queue, unread: poll(2) with no timeout, so nothing is consumed. A reader that
    /// keeps up reads them within moments; events that stay here are the sign of one that does not.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The group is closed.</exception>
    public unsafe bool HasPendingEvents
    {
        get
        {
            var added = false;
            try
            {
                _handle.DangerousAddRef(ref added);
                var fd = new Interop.Libc.PollFd { Fd = (int)_handle.DangerousGetHandle(), Events = Interop.Libc.POLLIN };
                return Interop.Libc.Poll(&fd, 1, 0) > 0 && (fd.REvents & Interop.Libc.POLLIN) != 0;
            }
            finally
            {
                if (added)
                {
                    _handle.DangerousRelease();
                }
            }
        }
    }

    /// <summary>The one read path (see <see cref="FanotifyReadPath"/>), for this group's own reader thread too.</summary>
    internal bool Read(List<FanotifyEvent> events, int millisecondsTimeout) => _reads.Read(events, millisecondsTimeout);

    /// <summary>
    /// Makes the next read behave as if read(2) had failed with <paramref name="errno"/> (tests of how callers live
    /// through errors the kernel returns only on some filesystems: EIO from FUSE, for example).
    /// </summary>
    internal void InjectReadFailure(int errno) => _reads.InjectFailure(errno);

    /// <summary>
    /// Closes the group: readers stop, the kernel allows every access still waiting for an answer, and
    /// answering afterwards throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _closing = true;
        _reader?.StopPump();
        _reads.Close(); // every thread in a read returns
        _handle.Dispose();
    }

    /// <summary>Writes one <c>fanotify_response</c>. Throws ObjectDisposedException once the group is closed.</summary>
    internal Interop.ErrorInfo? Respond(int eventFd, FanotifyResponse response, bool audit)
    {
        // Closed is closed, even while a reading thread still holds the descriptor until its poll returns: the kernel
        // allows what the group held once the descriptor goes, and an answer now would be a lie about who decided.
        ObjectDisposedException.ThrowIf(_closing, this);
        var answer = new Interop.FanotifyResponse
        {
            Fd = eventFd,
            Response = (response == FanotifyResponse.Deny ? FAN_DENY : FAN_ALLOW) | (audit ? FAN_AUDIT : 0),
        };
        return Interop.Libc.WriteAll(_handle, MemoryMarshal.AsBytes(new ReadOnlySpan<Interop.FanotifyResponse>(ref answer)));
    }

    private bool Mark(uint action, string? path, SafeHandle? file, FanotifyEvents events, FanotifyMarkOptions options, FanotifyMarkTarget target, bool tolerateMissing = false)
    {
        var flags = action | TargetFlag(target);
        flags |= (options & FanotifyMarkOptions.OnlyDirectory) != 0 ? FAN_MARK_ONLYDIR : 0;
        flags |= (options & FanotifyMarkOptions.DontFollow) != 0 ? FAN_MARK_DONT_FOLLOW : 0;
        var mask = (ulong)events;
        mask |= (options & FanotifyMarkOptions.EventOnChild) != 0 ? FAN_EVENT_ON_CHILD : 0;
        mask |= (options & FanotifyMarkOptions.OnDirectory) != 0 ? FAN_ONDIR : 0;

        var rc = file is null
            ? Interop.Fanotify.Mark(_handle, flags, mask, Interop.Fanotify.AT_FDCWD, path)
            : Interop.Fanotify.Mark(_handle, flags, mask, file, null);
        if (rc == 0)
        {
            return true;
        }

        var error = Interop.ErrorInfo.Last();
        if (tolerateMissing && error.RawErrno is Interop.Errno.ENOENT)
        {
            return false;
        }

        var permission = (mask & AllPermissionEvents) != 0;
        throw error.RawErrno switch
        {
            Interop.Errno.EINVAL when permission && Options.Class == FanotifyClass.Notification =>
                new InvalidOperationException($"fanotify_mark failed: {error}. Permission events need a group created with the Content or PreContent class."),
            Interop.Errno.EINVAL when permission && FanotifyCapabilities.Current.PermissionEvents && MountTable.FilesystemTypeOf(path ?? FileIdentity.PathOf(file!)) is { } type =>
                new NotSupportedException($"fanotify_mark '{path ?? FileIdentity.PathOf(file!)}' failed: {error}. It lies on a {type} filesystem, which does not support permission events (procfs, sysfs and other pseudo-filesystems hold no files to scan); this kernel supports them elsewhere. Protect a path on a regular filesystem."),
            Interop.Errno.EINVAL when permission =>
                new NotSupportedException($"fanotify_mark failed: {error}. The kernel rejects permission events: it was built without CONFIG_FANOTIFY_ACCESS_PERMISSIONS, or lacks one of them (open-exec permission needs Linux 5.0)."),
            Interop.Errno.EINVAL when target == FanotifyMarkTarget.Filesystem =>
                new NotSupportedException($"fanotify_mark failed: {error}. Filesystem marks need Linux 4.20, and some events need file-id reporting."),
            Interop.Errno.EXDEV or Interop.Errno.ENODEV or Interop.Errno.EOPNOTSUPP =>
                new NotSupportedException($"fanotify_mark '{path}' failed: {error}. This filesystem cannot be marked in this way."),
            _ => Interop.GetExceptionForError(error, "fanotify_mark", path, MarkLimitAdvice(error)),
        };
    }

    private static string? MarkLimitAdvice(Interop.ErrorInfo error) => error.RawErrno == Interop.Errno.ENOSPC
        ? $"The per-user mark limit fs.fanotify.max_user_marks is {Interop.ReadSysctl("/proc/sys/fs/fanotify/max_user_marks")}; raise it with sysctl, or create the group with UnlimitedMarks."
        : null;

    private static uint IgnoreFlags(FanotifyIgnoreOptions options) =>
        ((options & FanotifyIgnoreOptions.SurviveModify) != 0 ? FAN_MARK_IGNORED_SURV_MODIFY : 0)
        | ((options & FanotifyIgnoreOptions.Evictable) != 0 ? FAN_MARK_EVICTABLE : 0);

    private static ulong IgnoreMask(FanotifyEvents events, FanotifyIgnoreOptions options) =>
        (ulong)events | ((options & FanotifyIgnoreOptions.Children) != 0 ? FAN_EVENT_ON_CHILD : 0);

    private static uint TargetFlag(FanotifyMarkTarget target) => target switch
    {
        FanotifyMarkTarget.Mount => FAN_MARK_MOUNT,
        FanotifyMarkTarget.Filesystem => FAN_MARK_FILESYSTEM,
        _ => FAN_MARK_INODE,
    };
}
