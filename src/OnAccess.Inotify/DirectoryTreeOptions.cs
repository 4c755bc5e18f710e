namespace OnAccess.Inotify;

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
