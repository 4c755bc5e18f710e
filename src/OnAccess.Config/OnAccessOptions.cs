namespace OnAccess.Config;

/// <summary>
/// The on-access directives of clamd.conf, one property each, with ClamAV 1.4's defaults. Read them from a file with
/// <see cref="ClamdConf"/>, bind them from an <c>OnAccess</c> configuration section (same property names), or set them
/// in code; <see cref="OnAccessPlan.Resolve(OnAccessOptions)"/> turns them into what will actually be monitored.
/// </summary>
public sealed class OnAccessOptions
{
    /// <summary>The default of <see cref="MaxFileSize"/>: 5 MiB.</summary>
    public const long DefaultMaxFileSize = 5L * 1024 * 1024;

    /// <summary>The default of <see cref="MaxThreads"/>.</summary>
    public const int DefaultMaxThreads = 5;

    /// <summary>The default of <see cref="ScanTimeout"/>: 5000 ms.</summary>
    public static readonly TimeSpan DefaultScanTimeout = TimeSpan.FromMilliseconds(5000);

    /// <summary>
    /// <c>ScanOnAccess</c>: <see langword="false"/> turns monitoring off and every other directive is ignored;
    /// <see langword="null"/> (absent, as in ClamAV 1.4 where the directive is deprecated) or <see langword="true"/> enables it.
    /// </summary>
    public bool? ScanOnAccess { get; set; }

    /// <summary><c>OnAccessMountPath</c>: mount points watched whole, notify-only. Setting any pre-empts include paths.</summary>
    public IList<string> MountPaths { get; set; } = [];

    /// <summary><c>OnAccessIncludePath</c>: directories protected, recursively unless <see cref="DisableDdd"/>.</summary>
    public IList<string> IncludePaths { get; set; } = [];

    /// <summary><c>OnAccessExcludePath</c>: directories removed, with their subtrees, from the include paths.</summary>
    public IList<string> ExcludePaths { get; set; } = [];

    /// <summary><c>OnAccessExcludeUID</c>: effective UIDs whose accesses are allowed without a scan.</summary>
    public IList<uint> ExcludeUids { get; set; } = [];

    /// <summary><c>OnAccessExcludeUname</c>: user names (matched exactly) whose accesses are allowed without a scan.</summary>
    public IList<string> ExcludeUnames { get; set; } = [];

    /// <summary><c>OnAccessExcludeRootUID</c>: allow accesses by effective UID 0 without a scan.</summary>
    public bool ExcludeRootUid { get; set; }

    /// <summary><c>OnAccessMaxFileSize</c>: files larger than this many bytes are allowed unscanned; 0 means no limit.</summary>
    public long MaxFileSize { get; set; } = DefaultMaxFileSize;

    /// <summary><c>OnAccessMaxThreads</c>: how many scans run at once.</summary>
    public int MaxThreads { get; set; } = DefaultMaxThreads;

    /// <summary><c>OnAccessRetryAttempts</c>: how often a failed scan is retried (0-255).</summary>
    public int RetryAttempts { get; set; }

    /// <summary><c>OnAccessDenyOnError</c>: deny a held access whose scan failed or timed out (after the retries).</summary>
    public bool DenyOnError { get; set; }

    /// <summary><c>OnAccessDisableDDD</c>: watch include paths non-recursively, without the directory tracker.</summary>
    public bool DisableDdd { get; set; }

    /// <summary><c>OnAccessPrevention</c>: hold every open until the scanner answers, and deny infected files.</summary>
    public bool Prevention { get; set; }

    /// <summary><c>OnAccessExtraScanning</c>: also scan files that are created, moved in, or closed after writing.</summary>
    public bool ExtraScanning { get; set; }

    /// <summary><c>OnAccessCurlTimeout</c> (milliseconds in clamd.conf): the deadline of one scan.</summary>
    public TimeSpan ScanTimeout { get; set; } = DefaultScanTimeout;

    /// <summary>
    /// How recursive include paths that are not whole filesystems are marked (no clamd.conf directive): directory by
    /// directory (the default), or with one filesystem mark and no window (<see cref="Config.TreeMarking"/>).
    /// </summary>
    public TreeMarking TreeMarking { get; set; }

    /// <summary>Copies every property into a new instance (lists are copied, not shared).</summary>
    /// <returns>An independent copy.</returns>
    public OnAccessOptions Clone()
    {
        var copy = new OnAccessOptions();
        CopyTo(copy);
        return copy;
    }

    /// <summary>Copies every property into <paramref name="target"/> (lists are copied, not shared).</summary>
    /// <param name="target">The options to overwrite, for example the instance the options pattern configures.</param>
    public void CopyTo(OnAccessOptions target)
    {
        ArgumentNullException.ThrowIfNull(target);
        target.ScanOnAccess = ScanOnAccess;
        target.MountPaths = [.. MountPaths];
        target.IncludePaths = [.. IncludePaths];
        target.ExcludePaths = [.. ExcludePaths];
        target.ExcludeUids = [.. ExcludeUids];
        target.ExcludeUnames = [.. ExcludeUnames];
        target.ExcludeRootUid = ExcludeRootUid;
        target.MaxFileSize = MaxFileSize;
        target.MaxThreads = MaxThreads;
        target.RetryAttempts = RetryAttempts;
        target.DenyOnError = DenyOnError;
        target.DisableDdd = DisableDdd;
        target.Prevention = Prevention;
        target.ExtraScanning = ExtraScanning;
        target.ScanTimeout = ScanTimeout;
        target.TreeMarking = TreeMarking;
    }
}
