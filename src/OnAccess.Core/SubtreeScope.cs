using System.Runtime.InteropServices;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using OnAccess.Config;
using OnAccess.Fanotify;
using OnAccess.Kernel;
using OnAccess.Paths;

namespace OnAccess;

/// <summary>
/// Where an open held by a subtree's filesystem mark (<see cref="RootMarking.FilesystemSubtree"/>) lies: inside a root,
/// outside it in a directory no user can change (allowed at once, and the kernel told to stop asking about it), or
/// anywhere else (scanned, as the tree is).
/// </summary>
/// <remarks>
/// <para>
/// The kernel's path of an open is believed only through a mount of the monitor's own namespace (<see cref="MountView"/>);
/// it is then read relative to its filesystem (the mount's root and mount point), so the tree reached through a bind
/// mount or a second mount of its filesystem is inside wherever it shows. Anything else is unknown, and scanned.
/// </para>
/// <para>
/// The place is read after the open, so a user who can rename the file (or a directory above it) could have opened it
/// inside and moved it out before the path is read. An open outside is therefore allowed unscanned only when the
/// directory it lies in is one no user can add a name to (root's, writable by no one else) and neither it nor any
/// directory above it, up to its mount's root, can be moved to another parent by a user (moving a directory to a new
/// parent needs write permission on it and on the parent it leaves; a sticky parent also needs ownership). Such a
/// directory was outside when the file was opened, and stays outside: it gets an evictable ignore mark (which stays on
/// a directory wherever it moves: hence the rule), and the kernel stops asking about its files. Everything else on the
/// filesystem (users' directories, /tmp) is scanned like the tree. A directory root moves into the tree loses its
/// ignore mark when the tracker sees it arrive.
/// </para>
/// </remarks>
internal sealed class SubtreeScope
{
    /// <summary>Where an open lies.</summary>
    public enum Place
    {
        /// <summary>Below a root, or in a place that cannot be told: decided by the plan, scanned.</summary>
        Inside,

        /// <summary>Outside every root in a directory no user can change: allowed at once.</summary>
        Outside,

        /// <summary>Outside every root, but where a user could have moved it from inside since the open: scanned.</summary>
        Unsettled,

        /// <summary>Below an exclude path, in a directory no user can change: allowed unscanned.</summary>
        Excluded,
    }

    private const int MaxRemembered = 4096;
    private const int MaxEntriesExamined = 65_536;
    private const int MaxDepth = 256;

    private readonly Root[] _roots;
    private readonly HashSet<ulong> _devices;
    private readonly Func<ulong, bool> _marked;
    private readonly MountView _mounts;
    private readonly FanotifyEvents _events;
    private readonly bool _ignoreDirectories;
    private readonly ConcurrentDictionary<string, byte> _unsettled = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _notIgnorable = new(StringComparer.Ordinal);
    private long _outside;
    private long _ignored;

    /// <param name="plan">The plan: its <see cref="RootMarking.FilesystemSubtree"/> roots.</param>
    /// <param name="marked">Whether a device holds a subtree's filesystem mark now (a filesystem that refused one is marked directory by directory).</param>
    /// <param name="mounts">This namespace's mounts.</param>
    /// <param name="events">The events the marks ask for (the ignore marks ignore the same).</param>
    /// <param name="logger">Where a root that cannot be placed is logged.</param>
    public SubtreeScope(OnAccessPlan plan, Func<ulong, bool> marked, MountView mounts, FanotifyEvents events, ILogger logger)
    {
        _marked = marked;
        _mounts = mounts;
        _events = events;
        _ignoreDirectories = FanotifyCapabilities.Current.IgnoreMark && FanotifyCapabilities.Current.EvictableMarks;
        var roots = new List<Root>();
        foreach (var root in plan.Roots.Where(r => r.Marking == RootMarking.FilesystemSubtree))
        {
            using var fd = Descriptors.OpenDirectory(root.Path, out var errno)
                ?? throw Interop.GetExceptionForError(Interop.ErrorInfo.FromErrno(errno), "open", root.Path);
            var status = Descriptors.StatusOf(fd) ?? throw new IOException($"statx of '{root.Path}' failed.");
            var relative = mounts.Find(status.MountId)?.Relative(Encoding.UTF8.GetBytes(root.Path));
            if (relative is null)
            {
                Log.SubtreeRootUnplaced(logger, root.Path);
            }

            var excluded = relative is null ? [] : plan.ExcludePaths
                .Where(x => PathPrefix.IsSameOrUnder(x, root.Path))
                .Select(x => relative is [(byte)'/'] ? Encoding.UTF8.GetBytes(x[root.Path.Length..]) : (byte[])[.. relative, .. Encoding.UTF8.GetBytes(x[root.Path.Length..])])
                .ToArray();
            roots.Add(new Root(status.Device, relative, excluded));
        }

        _roots = [.. roots];
        _devices = [.. roots.Select(r => r.Device)];
    }

    /// <summary>Opens outside every root, answered at once.</summary>
    public long OutsideOpens => Interlocked.Read(ref _outside);

    /// <summary>Outside directories given an ignore mark (evictable: the kernel may drop some, and they are marked again at their next open).</summary>
    public long IgnoredDirectories => Interlocked.Read(ref _ignored);

    /// <summary>Whether opens on <paramref name="device"/> are held by a subtree's filesystem mark.</summary>
    public bool Covers(ulong device) => _devices.Contains(device) && _marked(device);

    /// <summary>
    /// Where the open of <paramref name="identity"/>, whose kernel path is <paramref name="path"/>, lies; for
    /// <see cref="Place.Outside"/>, <paramref name="directory"/> is its directory, open (the caller disposes it).
    /// </summary>
    public Place Locate(byte[]? path, in FileIdentity identity, out SafeDescriptorHandle? directory, out string? key)
    {
        directory = null;
        key = null;
        if (path is null || _mounts.MountOf(identity) is not { } mount || mount.Relative(path) is not { } relative)
        {
            return Place.Inside;
        }

        foreach (var root in _roots)
        {
            if (root.Device == identity.Device && (root.Relative is null || IsSameOrUnder(relative, root.Relative)))
            {
                // Below a root (or on the filesystem of a root that could not be placed). Below an exclusion too, it is
                // excluded only where no user can have moved it since the open (the rule for outside, below).
                if (root.Relative is null || !root.Excluded.Any(x => IsSameOrUnder(relative, x)))
                {
                    return Place.Inside;
                }

                using var excludedIn = Settled(mount, path, identity, out key);
                return excludedIn is null ? Place.Inside : Place.Excluded;
            }
        }

        directory = Settled(mount, path, identity, out key);
        return directory is null ? Place.Unsettled : Place.Outside;
    }

    /// <summary>
    /// The directory of the opened file, open, when no user can have put the file there since the open: root's and
    /// writable by no one else, no directory up to the mount's root movable by a user, and the file in it by that
    /// name (a name swapped along the path since it was read would open another directory than the file's); null
    /// otherwise (remembered by <paramref name="key"/>, the mount and the directory's path).
    /// </summary>
    private SafeDescriptorHandle? Settled(MountView.Mount mount, byte[] path, in FileIdentity identity, out string key)
    {
        var slash = Array.LastIndexOf(path, (byte)'/');
        var parent = slash <= 0 ? "/"u8.ToArray() : path[..slash];
        key = mount.Id.ToString(CultureInfo.InvariantCulture) + ":" + Convert.ToBase64String(parent);
        if (_unsettled.ContainsKey(key) || mount.Tail(parent) is not { } tail)
        {
            return null;
        }

        var directory = mount.OpenDirectoryBelow(tail);
        if (directory is not null && Descriptors.StatusOf(directory) is { } status && status.MountId == mount.Id && status.Device == identity.Device
            && !WritableByUsers(status) && NoUserCanMove(directory, status, mount.Root is [(byte)'/']))
        {
            if (Holds(directory, path.AsSpan(slash + 1), identity))
            {
                return directory;
            }

            directory.Dispose();
            return null; // swapped meanwhile: not remembered
        }

        directory?.Dispose();
        Remember(_unsettled, key);
        return null;
    }

    /// <summary>
    /// After an open outside was allowed: counts it, and puts an evictable ignore mark on its directory when no user
    /// can change a file in it either: every file there root's and writable by no one else. Otherwise a user could
    /// give one of its files a name inside the tree (a hard link: fs.protected_hardlinks lets the owner, or a user who
    /// may read and write it) and write there what its name outside, ignored, would then serve unscanned.
    /// </summary>
    public void AfterOutside(GroupState group, SafeDescriptorHandle directory, string key)
    {
        Interlocked.Increment(ref _outside);
        if (!_ignoreDirectories || _notIgnorable.ContainsKey(key))
        {
            return;
        }

        if (!NoUserCanChangeAFile(directory))
        {
            Remember(_notIgnorable, key);
            return;
        }

        try
        {
            group.Group.AddIgnoreMark(directory, _events, FanotifyIgnoreOptions.SurviveModify | FanotifyIgnoreOptions.Evictable | FanotifyIgnoreOptions.Children);
            Interlocked.Increment(ref _ignored);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ObjectDisposedException)
        {
            // The mark limit, a non-evictable mark already there, or the group closed: the open was answered anyway,
            // and the directory is not looked over again at each open.
            Remember(_notIgnorable, key);
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

    /// <summary>
    /// Whether no user can move <paramref name="directory"/>, or any directory above it up to its mount's root, to
    /// another parent: for each, it or its parent is writable by root alone, or the parent is sticky and both are
    /// root's. Where the mount shows a directory of its filesystem (a bind mount), the directories above that cannot be
    /// walked from here: no.
    /// </summary>
    private static bool NoUserCanMove(SafeDescriptorHandle directory, DescriptorStatus status, bool mountShowsFilesystemRoot)
    {
        SafeDescriptorHandle? current = null;
        try
        {
            var self = status;
            for (var depth = 0; depth < MaxDepth; depth++)
            {
                var parent = OpenParent(current ?? directory);
                if (parent is null || Descriptors.StatusOf(parent) is not { } up)
                {
                    parent?.Dispose();
                    return false;
                }

                current?.Dispose();
                current = parent;
                if (up.MountId != self.MountId || (up.Device == self.Device && up.Inode == self.Inode))
                {
                    return mountShowsFilesystemRoot; // the mount's top: it cannot be renamed
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

    /// <summary>Whether <paramref name="name"/> in <paramref name="directory"/> is the opened file.</summary>
    private static bool Holds(SafeHandle directory, ReadOnlySpan<byte> name, in FileIdentity identity) =>
        StatusBeneath(directory, name) is { } status && status.Inode == identity.Inode && status.Device == identity.Device;

    /// <summary>Whether every regular file in <paramref name="directory"/> is root's and writable by no one else.</summary>
    private static bool NoUserCanChangeAFile(SafeDescriptorHandle directory)
    {
        var entries = new List<DirectoryEntry>();
        if (Descriptors.ReadEntries(directory, entries) != 0 || entries.Count > MaxEntriesExamined)
        {
            return false;
        }

        foreach (var entry in entries)
        {
            if (entry.Type == Interop.Libc.DT_REG && (StatusBeneath(directory, entry.Name) is not { } file || WritableByUsers(file)))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The status of <paramref name="name"/> in <paramref name="directory"/>, looked up without following a link or
    /// entering a mount that covers it (a lookup in a mount whose server never answers would hold every open).
    /// </summary>
    private static unsafe DescriptorStatus? StatusBeneath(SafeHandle directory, ReadOnlySpan<byte> name)
    {
        if (!Descriptors.IsSingleComponent(name))
        {
            return null;
        }

        var z = new byte[name.Length + 1];
        name.CopyTo(z);
        fixed (byte* p = z)
        {
            var fd = Interop.Libc.OpenAt2(directory, p, Interop.Libc.O_PATH | Interop.Libc.O_NOFOLLOW | Interop.Libc.O_CLOEXEC, Interop.Libc.RESOLVE_NO_SYMLINKS | Interop.Libc.RESOLVE_NO_MAGICLINKS | Interop.Libc.RESOLVE_NO_XDEV | Interop.Libc.RESOLVE_BENEATH);
            if (fd < 0)
            {
                return null;
            }

            using var handle = new SafeDescriptorHandle(fd);
            return Descriptors.StatusOf(handle);
        }
    }

    private static void Remember(ConcurrentDictionary<string, byte> set, string key)
    {
        if (set.Count >= MaxRemembered)
        {
            set.Clear();
        }

        set.TryAdd(key, 0);
    }

    /// <summary>A user may write it: not root's (its owner may chmod it), or writable by group or others (an ACL's mask shows in the group bits).</summary>
    private static bool WritableByUsers(DescriptorStatus d) => d.Uid != 0 || (d.Mode & 0x12) != 0;

    private static bool IsSameOrUnder(byte[] path, byte[] ancestor) =>
        ancestor is [(byte)'/'] || (path.AsSpan().StartsWith(ancestor) && (path.Length == ancestor.Length || path[ancestor.Length] == (byte)'/'));

    private static unsafe SafeDescriptorHandle? OpenParent(SafeHandle directory)
    {
        var dots = "..\0"u8;
        fixed (byte* p = dots)
        {
            var fd = Interop.Libc.OpenAt(directory, p, Interop.Libc.O_PATH | Interop.Libc.O_CLOEXEC | Interop.Libc.O_DIRECTORY, 0);
            return fd < 0 ? null : new SafeDescriptorHandle(fd);
        }
    }

    /// <summary>A root: its device, its path within its filesystem (null when it could not be placed), and those of the exclude paths below it.</summary>
    private sealed record Root(ulong Device, byte[]? Relative, byte[][] Excluded);
}
