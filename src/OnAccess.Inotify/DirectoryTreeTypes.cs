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

    /// <summary>A directory could not be watched (for example the watch limit was reached); it and its subtree are not tracked.</summary>
    WatchFailed,
}

/// <summary>One notification of a <see cref="DirectoryTree"/>.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Path">The directory's or file's path now.</param>
/// <param name="OldPath">For <see cref="DirectoryTreeEventKind.DirectoryMoved"/>, the path before the move.</param>
/// <param name="Reason">For <see cref="DirectoryTreeEventKind.WatchFailed"/>, why.</param>
public sealed record DirectoryTreeEvent(DirectoryTreeEventKind Kind, string Path, string? OldPath = null, string? Reason = null);
