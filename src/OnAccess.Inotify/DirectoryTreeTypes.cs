using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace OnAccess.Inotify;

/// <summary>A directory the tracker starts from.</summary>
/// <param name="Path">An absolute, normalised path.</param>
/// <param name="Recursive">Track every subdirectory (DDD); otherwise only the directory itself.</param>
public sealed record DirectoryTreeRoot(string Path, bool Recursive = true);

/// <summary>What a <see cref="DirectoryTree"/> tracks and reports.</summary>
public sealed class DirectoryTreeOptions
{
    /// <summary>The roots. Overlapping roots should be merged first (OnAccess.Config's plan does).</summary>
    public IList<DirectoryTreeRoot> Roots { get; set; } = [];

    /// <summary>Directories that are never watched, with their subtrees, including ones created or moved in later.</summary>
    public IList<string> ExcludePaths { get; set; } = [];

    /// <summary>
    /// Also report files: created, moved in, closed after writing, and the files found in a directory that appears.
    /// The default is <see langword="false"/> (directories only).
    /// </summary>
    public bool ReportFiles { get; set; }

    /// <summary>
    /// How many notifications may wait for the consumer. When full, the tracker waits, the kernel queue fills and
    /// eventually overflows, and the tree is then rebuilt: nothing is lost silently. The default is 65,536.
    /// </summary>
    public int EventCapacity { get; set; } = 65_536;

    /// <summary>
    /// Who protects the directories and takes the files (for example a fanotify engine that marks each directory).
    /// It is called on the tracker's thread, with descriptors of the very directories and files: see
    /// <see cref="IDirectoryTreeHandler"/>. <see langword="null"/> (the default): the tracker only reports.
    /// </summary>
    public IDirectoryTreeHandler? Handler { get; set; }

    /// <summary>
    /// The first wait before a directory that could not be watched or protected (a limit reached, EACCES, ENOMEM) is
    /// tried again; each failure doubles it, up to <see cref="RetryMaxDelay"/>. The default is 100 ms.
    /// </summary>
    public TimeSpan RetryInitialDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest wait between two tries of a directory that could not be watched or protected. The default is 10 s.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// What the owner of a <see cref="DirectoryTree"/> does with what it tracks. The tracker calls it on its own thread,
/// in the order things happened, with descriptors of the very directories and files (opened relative to their parent,
/// never following a link, never by re-resolving a path string), so a name an attacker swaps in between cannot
/// redirect it. Implementations must not block and must not call back into the tree.
/// </summary>
public interface IDirectoryTreeHandler
{
    /// <summary>
    /// A directory is now tracked: protect it (for example mark it). Called after its watch exists and before its
    /// entries are read, so nothing created in it escapes. Throw <see cref="IOException"/> (or
    /// <see cref="UnauthorizedAccessException"/>) when it cannot be protected: the tracker then does not track it and
    /// tries again later, with backoff, reporting it meanwhile (<see cref="DirectoryTree.UnprotectedCount"/>).
    /// </summary>
    /// <param name="directory">The directory; its descriptor is valid for the call only.</param>
    void DirectoryAdded(TrackedDirectory directory);

    /// <summary>
    /// A directory that still exists is no longer tracked: moved out of the tree, or under an exclusion. Its
    /// descriptor was opened by its file handle, so it is the directory that was protected, wherever it is now.
    /// (A deleted directory is not reported here: it took its marks with it.)
    /// </summary>
    /// <param name="directory">The directory; its descriptor is valid for the call only.</param>
    void DirectoryRemoved(TrackedDirectory directory);

    /// <summary>
    /// With <see cref="DirectoryTreeOptions.ReportFiles"/>: a regular file was created, moved in or written and closed
    /// in a tracked directory. It was opened read-only relative to its directory without following a link, after its
    /// type was checked on a path descriptor (a device, FIFO or socket is never opened).
    /// </summary>
    /// <param name="file">The file; the handler owns its descriptor and must dispose it.</param>
    void FileChanged(TrackedFile file);
}

/// <summary>A directory handed to an <see cref="IDirectoryTreeHandler"/>.</summary>
public sealed class TrackedDirectory
{
    private readonly Func<byte[]> _path;

    internal TrackedDirectory(SafeHandle descriptor, ulong device, ulong inode, Func<byte[]> path)
    {
        Descriptor = descriptor;
        Device = device;
        Inode = inode;
        _path = path;
    }

    /// <summary>A read-only descriptor of the directory (O_DIRECTORY), valid during the call only; do not dispose it.</summary>
    public SafeHandle Descriptor { get; }

    /// <summary>The device the directory lives on (st_dev).</summary>
    public ulong Device { get; }

    /// <summary>The directory's inode number.</summary>
    public ulong Inode { get; }

    /// <summary>The path the tree knows the directory by (for messages; it may have changed since), as the kernel's bytes.</summary>
    /// <returns>The path's bytes (not necessarily UTF-8).</returns>
    public byte[] GetRawPath() => _path();

    /// <summary>The path the tree knows the directory by, for messages (bytes that are not UTF-8 shown as U+FFFD).</summary>
    /// <returns>The path.</returns>
    public string GetPath() => Encoding.UTF8.GetString(_path());
}

/// <summary>A file handed to an <see cref="IDirectoryTreeHandler"/>: created, moved in, or written and closed.</summary>
public sealed class TrackedFile
{
    internal TrackedFile(SafeFileHandle file, DirectoryTreeEventKind kind, byte[] rawPath)
    {
        File = file;
        Kind = kind;
        RawPath = rawPath;
    }

    /// <summary>The file, opened read-only; the handler owns it and must dispose it.</summary>
    public SafeFileHandle File { get; }

    /// <summary><see cref="DirectoryTreeEventKind.FileCreated"/>, <see cref="DirectoryTreeEventKind.FileMovedIn"/> or <see cref="DirectoryTreeEventKind.FileClosedWrite"/>.</summary>
    public DirectoryTreeEventKind Kind { get; }

    /// <summary>The path the tree knows it by, as the kernel's bytes (not necessarily UTF-8).</summary>
    public byte[] RawPath { get; }

    /// <summary>The path, for messages (bytes that are not UTF-8 shown as U+FFFD).</summary>
    public string Path => Encoding.UTF8.GetString(RawPath);
}

/// <summary>What happened.</summary>
public enum DirectoryTreeEventKind
{
    /// <summary>A directory is now tracked (created, moved in, found on a resynchronisation, or a restored root's).</summary>
    DirectoryAdded,

    /// <summary>A directory is no longer tracked (deleted, moved out, found gone on a resynchronisation).</summary>
    DirectoryRemoved,

    /// <summary>A tracked directory was renamed or moved within the tree; <see cref="DirectoryTreeEvent.OldPath"/> says from where. Its subtree moved with it.</summary>
    DirectoryMoved,

    /// <summary>A file was created in a tracked directory, or found in a directory that just appeared.</summary>
    FileCreated,

    /// <summary>A file was moved into (or renamed within) a tracked directory.</summary>
    FileMovedIn,

    /// <summary>A file opened for writing was closed.</summary>
    FileClosedWrite,

    /// <summary>The kernel's queue overflowed; events were lost. A resynchronisation follows.</summary>
    Overflowed,

    /// <summary>The tree was rebuilt from the roots after an overflow; the differences were reported just before.</summary>
    Resynchronized,

    /// <summary>A root was deleted or moved away (or is missing); it is watched for again.</summary>
    RootLost,

    /// <summary>A lost root reappeared and is tracked again.</summary>
    RootRestored,

    /// <summary>Info: a tracked directory is a mount point of another filesystem; it is tracked like any directory.</summary>
    NestedMount,

    /// <summary>
    /// A directory could not be watched or protected (for example the watch limit was reached); it and its subtree are
    /// not tracked for now, and are tried again with backoff until they are (then <see cref="ProtectionRestored"/>).
    /// </summary>
    WatchFailed,

    /// <summary>A directory that had failed (<see cref="WatchFailed"/>) is now watched and protected, with its subtree.</summary>
    ProtectionRestored,

    /// <summary>
    /// A directory left the tree but could not be handed to <see cref="IDirectoryTreeHandler.DirectoryRemoved"/>:
    /// its filesystem gives no file handles, so it cannot be found again. Protection it had may remain on it; the
    /// owner can start over with <see cref="DirectoryTree.ReprotectAsync"/> on a fresh target.
    /// </summary>
    RemovalUncertain,
}

/// <summary>One notification of a <see cref="DirectoryTree"/>.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Path">The directory's or file's path now.</param>
/// <param name="OldPath">For <see cref="DirectoryTreeEventKind.DirectoryMoved"/>, the path before the move.</param>
/// <param name="Reason">For <see cref="DirectoryTreeEventKind.WatchFailed"/>, why.</param>
/// <remarks>Paths are for messages: a name that is not UTF-8 shows U+FFFD in place of its bytes.</remarks>
public sealed record DirectoryTreeEvent(DirectoryTreeEventKind Kind, string Path, string? OldPath = null, string? Reason = null);
