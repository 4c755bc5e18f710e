using System.Runtime.InteropServices;
using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging;
using OnAccess.Config;
using OnAccess.Fanotify;
using OnAccess.Kernel;
using OnAccess.Paths;

namespace OnAccess;

/// <summary>
/// Where an open held by a subtree's filesystem mark (<see cref="RootMarking.FilesystemSubtree"/>) lies: inside a root,
/// outside every root, or unknown (treated as inside). And, for an open outside, whether the kernel may stop asking
/// about its directory.
/// </summary>
/// <remarks>
/// <para>
/// The kernel's path of an open file is where it lies in the opener's mount namespace, which a user can shape at will
/// (a bind mount in a namespace of their own). So a path is believed only when it leads, in the monitor's namespace,
/// to the very file through the very mount (<see cref="FileIdentity.IsReachedBy"/>), and it is then read relative to
/// its filesystem (the mount's root and mount point, from <c>/proc/self/mountinfo</c>): a root reached through a bind
/// mount or a second mount of its filesystem is inside wherever it shows. Anything else is unknown, and scanned.
/// </para>
/// <para>
/// An ignore mark on an outside directory makes the kernel skip its children's opens, and it stays on the directory
/// wherever it moves: a directory moved into the tree would keep it. So a directory is ignored only when no user but
/// root can move it, or any directory above it, to another parent (moving a directory to a new parent needs write
/// permission on it and on the parent it leaves; a sticky parent also needs ownership): it and every ancestor up to
/// its mount's root owned by root and writable by no one else, or held in a parent only root may change. Only root can
/// then add a name to it too (a hard link to a protected file included). A directory a user could move pays one round
/// trip per open instead, and a directory root moves in loses its ignore mark when the tracker sees it arrive.
/// </para>
/// </remarks>
internal sealed class SubtreeScope : IDisposable
{
    /// <summary>Where an open lies.</summary>
    public enum Place
    {
        /// <summary>Below a root: decided by the plan.</summary>
        Inside,

        /// <summary>Outside every root of its filesystem: allowed at once.</summary>
        Outside,

        /// <summary>Its path cannot be believed (another namespace, a deleted file, an unknown mount): scanned.</summary>
        Unknown,
    }

    private const int MaxMovableRemembered = 4096;
    private const int MaxDepth = 256;

    private readonly Root[] _roots;
    private readonly HashSet<ulong> _devices;
    private readonly Func<ulong, bool> _marked;
    private readonly FanotifyEvents _events;
    private readonly bool _ignoreDirectories;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, byte> _movable = new(StringComparer.Ordinal);
    private readonly object _mountsGate = new();
    private readonly Thread? _mountWatcher;
    private readonly SafeDescriptorHandle? _mountInfo;
    private volatile Mount[] _mounts = [];
    private volatile bool _mountsChanged = true;
    private volatile bool _disposed;
    private long _outside;
    private long _ignored;

    /// <param name="plan">The plan: its <see cref="RootMarking.FilesystemSubtree"/> roots.</param>
    /// <param name="marked">Whether a device holds a subtree's filesystem mark now (a filesystem that refused one is marked directory by directory).</param>
    /// <param name="events">The events the marks ask for (the ignore marks ignore the same).</param>
    /// <param name="logger">Where a root that cannot be placed is logged.</param>
    public SubtreeScope(OnAccessPlan plan, Func<ulong, bool> marked, FanotifyEvents events, ILogger logger)
    {
        _marked = marked;
        _events = events;
        _logger = logger;
        _ignoreDirectories = FanotifyCapabilities.Current.IgnoreMark && FanotifyCapabilities.Current.EvictableMarks;
        var roots = new List<Root>();
        foreach (var root in plan.Roots.Where(r => r.Marking == RootMarking.FilesystemSubtree))
        {
            using var fd = Descriptors.OpenDirectory(root.Path, out var errno)
                ?? throw Interop.GetExceptionForError(Interop.ErrorInfo.FromErrno(errno), "open", root.Path);
            var status = DirectoryStatus.Of(fd) ?? throw new IOException($"statx of '{root.Path}' failed.");
            roots.Add(new Root(status.Device, status.MountId, Encoding.UTF8.GetBytes(root.Path)));
        }

        _roots = [.. roots];
        _devices = [.. roots.Select(r => r.Device)];
        if (_roots.Length > 0)
        {
            _mountInfo = OpenMountInfo();
            RefreshMounts();
            foreach (var root in _roots)
            {
                root.Relative = RelativeOf(root);
            }

            if (_mountInfo is not null)
            {
                _mountWatcher = new Thread(WatchMounts) { IsBackground = true, Name = "OnAccess mounts" };
                _mountWatcher.Start();
            }
        }
    }

    /// <summary>Opens outside every root, answered at once.</summary>
    public long OutsideOpens => Interlocked.Read(ref _outside);

    /// <summary>Outside directories given an ignore mark (evictable: the kernel may drop some, and they are marked again at their next open).</summary>
    public long IgnoredDirectories => Interlocked.Read(ref _ignored);

    /// <summary>Whether opens on <paramref name="device"/> are held by a subtree's filesystem mark.</summary>
    public bool Covers(ulong device) => _devices.Count > 0 && _devices.Contains(device) && _marked(device);

    /// <summary>Where the open of <paramref name="identity"/>, whose kernel path is <paramref name="path"/>, lies.</summary>
    public Place Locate(byte[]? path, in FileIdentity identity)
    {
        if (path is null || !identity.IsReachedBy(path) || FindMount(identity.MountId) is not { } mount || mount.Relative(path) is not { } relative)
        {
            return Place.Unknown;
        }

        var unknown = false;
        foreach (var root in _roots)
        {
            if (root.Device != identity.Device)
            {
                continue;
            }

            if (root.Relative is not { } rootRelative)
            {
                unknown = true; // this root's own place is unknown: nothing on its filesystem is outside
            }
            else if (IsSameOrUnder(relative, rootRelative))
            {
                return Place.Inside;
            }
        }

        return unknown ? Place.Unknown : Place.Outside;
    }

    /// <summary>
    /// After an open outside was allowed: counts it, and puts an evictable ignore mark on its directory when no user
    /// can move that directory into the tree (see the remarks), so the kernel stops asking about its files.
    /// </summary>
    public void AfterOutside(GroupState group, byte[] path, in FileIdentity identity)
    {
        Interlocked.Increment(ref _outside);
        if (!_ignoreDirectories || FindMount(identity.MountId) is not { Root.Length: 1 } mount)
        {
            return; // a bind mount of a directory: its ancestors above the mount's root cannot be walked from here
        }

        var slash = Array.LastIndexOf(path, (byte)'/');
        var directory = slash <= 0 ? "/"u8.ToArray() : path[..slash];
        var key = mount.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":" + Convert.ToBase64String(directory);
        if (_movable.ContainsKey(key))
        {
            return;
        }

        using var fd = OpenDirectory(directory);
        if (fd is null || DirectoryStatus.Of(fd) is not { } status || status.MountId != mount.Id)
        {
            return;
        }

        // The directory opened is judged on its own descriptor: if its path was swapped meanwhile, what is marked is
        // still a directory outside the tree that no user can move.
        if (FileIdentity.RawPathOf(fd) is not { } own || mount.Relative(own) is not { } relative || _roots.Any(r => r.Relative is { } rr && r.Device == status.Device && IsSameOrUnder(relative, rr)))
        {
            return;
        }

        if (!NoUserCanMove(fd, status))
        {
            if (_movable.Count >= MaxMovableRemembered)
            {
                _movable.Clear();
            }

            _movable.TryAdd(key, 0);
            return;
        }

        try
        {
            group.Group.AddIgnoreMark(fd, _events, FanotifyIgnoreOptions.SurviveModify | FanotifyIgnoreOptions.Evictable | FanotifyIgnoreOptions.Children);
            Interlocked.Increment(ref _ignored);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ObjectDisposedException)
        {
            // The mark limit, a non-evictable mark already there, or the group closed: the open was answered anyway.
        }
    }

    /// <summary>A directory the tracker found in the tree: an ignore mark it brought along (moved in by root) is taken away.</summary>
    public void Arrived(FanotifyGroup group, SafeHandle directory)
    {
        if (!_ignoreDirectories)
        {
            return;
        }

        try
        {
            group.RemoveIgnoreMark(directory, _events, FanotifyIgnoreOptions.SurviveModify | FanotifyIgnoreOptions.Children);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _mountInfo?.Dispose(); // the watcher's poll returns (POLLNVAL) and it leaves
    }

    /// <summary>
    /// Whether no user but root can move <paramref name="directory"/>, or any directory above it up to its mount's root,
    /// to another parent: for each, either the directory or its parent is writable by root alone, or the parent is
    /// sticky and both are root's.
    /// </summary>
    private static bool NoUserCanMove(SafeDescriptorHandle directory, DirectoryStatus status)
    {
        SafeDescriptorHandle? current = null;
        try
        {
            var self = status;
            for (var depth = 0; depth < MaxDepth; depth++)
            {
                var parent = OpenParent(current ?? directory);
                if (parent is null || DirectoryStatus.Of(parent) is not { } up)
                {
                    parent?.Dispose();
                    return false;
                }

                current?.Dispose();
                current = parent;
                if (up.MountId != self.MountId || (up.Device == self.Device && up.Inode == self.Inode))
                {
                    return true; // the mount's root: it cannot be renamed
                }

                var stickyGuarded = (up.Mode & 0x200) != 0 && up.Uid == 0 && self.Uid == 0;
                if (WritableByUsers(up) && WritableByUsers(self) && !stickyGuarded)
                {
                    return false;
                }

                self = up;
            }

            return false;
        }
        finally
        {
            current?.Dispose();
        }
    }

    /// <summary>A user may write it: not root's (its owner may chmod it), or writable by group or others (an ACL's mask shows in the group bits).</summary>
    private static bool WritableByUsers(DirectoryStatus d) => d.Uid != 0 || (d.Mode & 0x12) != 0;

    private static bool IsSameOrUnder(byte[] path, byte[] ancestor) =>
        ancestor is [(byte)'/'] || (path.AsSpan().StartsWith(ancestor) && (path.Length == ancestor.Length || path[ancestor.Length] == (byte)'/'));

    private byte[]? RelativeOf(Root root)
    {
        var mount = FindMount(root.MountId);
        var relative = mount?.Relative(root.Path);
        if (relative is null)
        {
            Log.SubtreeRootUnplaced(_logger, Encoding.UTF8.GetString(root.Path));
        }

        return relative;
    }

    private Mount? FindMount(ulong id)
    {
        if (id == 0)
        {
            return null;
        }

        for (var pass = 0; pass < 2; pass++)
        {
            if (_mountsChanged)
            {
                RefreshMounts();
            }

            foreach (var m in _mounts)
            {
                if (m.Id == id)
                {
                    return m;
                }
            }

            // Not listed: a mount made since the last read (the path that led here was checked to be in this
            // namespace); read the table again once.
            _mountsChanged = true;
        }

        return null;
    }

    private void RefreshMounts()
    {
        lock (_mountsGate)
        {
            _mountsChanged = false;
            var mounts = new List<Mount>();
            try
            {
                foreach (var line in File.ReadLines("/proc/self/mountinfo"))
                {
                    var fields = line.Split(' ');
                    if (fields.Length > 4 && ulong.TryParse(fields[0], out var id) && fields[2].Split(':') is [var major, var minor]
                        && uint.TryParse(major, out var ma) && uint.TryParse(minor, out var mi))
                    {
                        var device = Interop.Libc.MakeDev(ma, mi);
                        if (_devices.Contains(device))
                        {
                            mounts.Add(new Mount(id, device, Encoding.UTF8.GetBytes(MountTable.DecodeOctalEscapes(fields[3])), Encoding.UTF8.GetBytes(MountTable.DecodeOctalEscapes(fields[4]))));
                        }
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return; // kept as it was: what it does not list is unknown, and scanned
            }

            _mounts = [.. mounts];
        }
    }

    /// <summary>
    /// /proc/self/mountinfo polls with POLLPRI once after each change of the namespace's mounts: the table is read again
    /// at its next use (a mount id freed and given to a new mount is then not read with the old one's place).
    /// </summary>
    private unsafe void WatchMounts()
    {
        while (!_disposed)
        {
            var added = false;
            try
            {
                _mountInfo!.DangerousAddRef(ref added);
                var fd = new Interop.Libc.PollFd { Fd = (int)_mountInfo.DangerousGetHandle(), Events = Interop.Libc.POLLPRI };
                if (Interop.Libc.Poll(&fd, 1, 1000) > 0 && (fd.REvents & (Interop.Libc.POLLPRI | Interop.Libc.POLLERR)) != 0)
                {
                    _mountsChanged = true;
                }
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            finally
            {
                if (added)
                {
                    _mountInfo!.DangerousRelease();
                }
            }
        }
    }

    private static unsafe SafeDescriptorHandle? OpenMountInfo()
    {
        var path = "/proc/self/mountinfo\0"u8;
        fixed (byte* p = path)
        {
            var fd = Interop.Libc.OpenAt(Interop.Libc.AT_FDCWD, p, Interop.Libc.O_RDONLY | Interop.Libc.O_CLOEXEC, 0);
            return fd < 0 ? null : new SafeDescriptorHandle(fd);
        }
    }

    private static unsafe SafeDescriptorHandle? OpenDirectory(byte[] path)
    {
        var z = new byte[path.Length + 1];
        path.CopyTo(z, 0);
        fixed (byte* p = z)
        {
            var fd = Interop.Libc.OpenAt(Interop.Libc.AT_FDCWD, p, Interop.Libc.O_RDONLY | Interop.Libc.O_CLOEXEC | Interop.Libc.O_NONBLOCK | Interop.Libc.O_DIRECTORY | Interop.Libc.O_NOFOLLOW, 0);
            return fd < 0 ? null : new SafeDescriptorHandle(fd);
        }
    }

    private static unsafe SafeDescriptorHandle? OpenParent(SafeHandle directory)
    {
        var dots = "..\0"u8;
        fixed (byte* p = dots)
        {
            var fd = Interop.Libc.OpenAt(directory, p, Interop.Libc.O_PATH | Interop.Libc.O_CLOEXEC | Interop.Libc.O_DIRECTORY, 0);
            return fd < 0 ? null : new SafeDescriptorHandle(fd);
        }
    }

    private sealed class Root(ulong device, ulong mountId, byte[] path)
    {
        public ulong Device { get; } = device;

        public ulong MountId { get; } = mountId;

        public byte[] Path { get; } = path;

        /// <summary>Its path within its filesystem (from its mount's root), once known.</summary>
        public byte[]? Relative { get; set; }
    }

    /// <summary>One mount of a subtree's filesystem in this namespace: its id, the directory of the filesystem it shows, and where.</summary>
    private sealed record Mount(ulong Id, ulong Device, byte[] Root, byte[] Point)
    {
        /// <summary>A path through this mount, as a path within its filesystem; null when the path is not below its mount point.</summary>
        public byte[]? Relative(byte[] path)
        {
            ReadOnlySpan<byte> tail;
            if (Point is [(byte)'/'])
            {
                tail = path;
            }
            else if (path.AsSpan().StartsWith(Point) && (path.Length == Point.Length || path[Point.Length] == (byte)'/'))
            {
                tail = path.AsSpan(Point.Length);
            }
            else
            {
                return null;
            }

            if (Root is [(byte)'/'])
            {
                return tail.IsEmpty ? "/"u8.ToArray() : tail.ToArray();
            }

            return [.. Root, .. tail];
        }
    }

    /// <summary>What the walk needs of a directory, from one statx of its descriptor.</summary>
    private readonly record struct DirectoryStatus(ulong Device, ulong Inode, ulong MountId, uint Uid, uint Mode)
    {
        public static unsafe DirectoryStatus? Of(SafeHandle fd)
        {
            Interop.Libc.Statx statx;
            byte empty = 0;
            const uint Mask = 0x1 /* TYPE */ | 0x2 /* MODE */ | 0x8 /* UID */ | Interop.Libc.STATX_INO | Interop.Libc.STATX_MNT_ID;
            if (Interop.Libc.StatxAt(fd, &empty, Interop.Libc.AT_EMPTY_PATH, Mask, &statx) != 0 || (statx.Mask & Interop.Libc.STATX_MNT_ID) == 0)
            {
                return null;
            }

            return new DirectoryStatus(Interop.Libc.MakeDev(statx.DevMajor, statx.DevMinor), statx.Ino, statx.MountId, statx.Uid, statx.Mode);
        }
    }
}
