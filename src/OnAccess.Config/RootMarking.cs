namespace OnAccess.Config;

/// <summary>How a root of the plan is marked: the kind of fanotify mark that protects it, decided by the plan.</summary>
public enum RootMarking
{
    /// <summary>A mark on every directory of the tree, each put as the directory tracker finds it (DDD).</summary>
    DirectoryTree,

    /// <summary>
    /// One filesystem mark: the root is the root of a whole filesystem with nothing excluded below it (OA1022).
    /// Directories of other filesystems mounted below it are marked one by one.
    /// </summary>
    Filesystem,

    /// <summary>One mark on the directory itself: its files, not its subdirectories (<c>OnAccessDisableDDD yes</c>).</summary>
    Directory,

    /// <summary>One mount mark, notify-only (<c>OnAccessMountPath</c>).</summary>
    Mount,

    /// <summary>
    /// One filesystem mark on the filesystem that holds the root (<see cref="TreeMarking.Filesystem"/>, OA1025): a
    /// directory is protected the instant it exists, by whatever name it came. Every open elsewhere on that filesystem
    /// is held too and answered at once (a directory no user can move into the tree is then ignored by the kernel).
    /// Directories of other filesystems mounted below it are marked one by one.
    /// </summary>
    FilesystemSubtree,
}
