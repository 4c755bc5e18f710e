namespace OnAccess.Fanotify;

/// <summary>
/// What identifies one version of a file, read with statx on a descriptor (never by path): device, inode, size,
/// mode, owner, and the modification and change times in nanoseconds.
/// </summary>
/// <param name="Device">The device number (as <c>makedev(major, minor)</c>).</param>
/// <param name="Inode">The inode number.</param>
/// <param name="Size">The size in bytes.</param>
/// <param name="Mode">The file type and permission bits (<c>st_mode</c>).</param>
/// <param name="Uid">The owner's UID.</param>
/// <param name="ModifiedTimeNs">The modification time, in nanoseconds since the Unix epoch.</param>
/// <param name="ChangedTimeNs">The status change time, in nanoseconds since the Unix epoch.</param>
public readonly partial record struct FileIdentity(ulong Device, ulong Inode, long Size, uint Mode, uint Uid, long ModifiedTimeNs, long ChangedTimeNs)
{
    private const uint TypeMask = 0xF000;

    /// <summary>Whether the file is a regular file.</summary>
    public bool IsRegularFile => (Mode & TypeMask) == 0x8000;

    /// <summary>Whether the file is a directory.</summary>
    public bool IsDirectory => (Mode & TypeMask) == 0x4000;

    /// <summary>How many names the file has (<c>st_nlink</c>); 0 when not read.</summary>
    public uint LinkCount { get; init; }

    /// <summary>The mount the descriptor was opened through (<c>stx_mnt_id</c>, as in /proc/self/mountinfo); 0 when not read.</summary>
    public ulong MountId { get; init; }
}
