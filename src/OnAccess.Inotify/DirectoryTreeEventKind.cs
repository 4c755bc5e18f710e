namespace OnAccess.Inotify;

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
