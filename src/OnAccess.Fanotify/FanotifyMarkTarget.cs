namespace OnAccess.Fanotify;

/// <summary>What a mark is attached to.</summary>
public enum FanotifyMarkTarget
{
    /// <summary>One inode (file or directory).</summary>
    Inode,

    /// <summary>The mount containing the path (<c>FAN_MARK_MOUNT</c>).</summary>
    Mount,

    /// <summary>The filesystem containing the path, in every mount namespace (<c>FAN_MARK_FILESYSTEM</c>, Linux 4.20).</summary>
    Filesystem,
}
