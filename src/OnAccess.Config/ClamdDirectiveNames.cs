namespace OnAccess.Config;

/// <summary>The clamd.conf names of the directives that OnAccess reads, spelled as ClamAV spells them.</summary>
public static class ClamdDirectiveNames
{
    /// <summary><c>ScanOnAccess</c>: the 0.99 master switch, deprecated since ClamAV 0.102.</summary>
    public const string ScanOnAccess = "ScanOnAccess";

    /// <summary><c>OnAccessMountPath</c>: a mount to watch, notify-only.</summary>
    public const string MountPath = "OnAccessMountPath";

    /// <summary><c>OnAccessIncludePath</c>: a directory to protect.</summary>
    public const string IncludePath = "OnAccessIncludePath";

    /// <summary><c>OnAccessExcludePath</c>: a directory removed, with its subtree, from the include paths.</summary>
    public const string ExcludePath = "OnAccessExcludePath";

    /// <summary><c>OnAccessExcludeRootUID</c>: let processes with effective UID 0 through unscanned.</summary>
    public const string ExcludeRootUid = "OnAccessExcludeRootUID";

    /// <summary><c>OnAccessExcludeUID</c>: a UID whose processes go through unscanned.</summary>
    public const string ExcludeUid = "OnAccessExcludeUID";

    /// <summary><c>OnAccessExcludeUname</c>: a user name whose processes go through unscanned.</summary>
    public const string ExcludeUname = "OnAccessExcludeUname";

    /// <summary><c>OnAccessMaxFileSize</c>: files larger than this are not scanned.</summary>
    public const string MaxFileSize = "OnAccessMaxFileSize";

    /// <summary><c>OnAccessMaxThreads</c>: concurrent scans.</summary>
    public const string MaxThreads = "OnAccessMaxThreads";

    /// <summary><c>OnAccessCurlTimeout</c>: the scan deadline, in milliseconds.</summary>
    public const string CurlTimeout = "OnAccessCurlTimeout";

    /// <summary><c>OnAccessRetryAttempts</c>: retries of a failed scan.</summary>
    public const string RetryAttempts = "OnAccessRetryAttempts";

    /// <summary><c>OnAccessDenyOnError</c>: deny an access whose scan failed.</summary>
    public const string DenyOnError = "OnAccessDenyOnError";

    /// <summary><c>OnAccessDisableDDD</c>: watch include paths non-recursively.</summary>
    public const string DisableDdd = "OnAccessDisableDDD";

    /// <summary><c>OnAccessPrevention</c>: hold opens until the scanner answers, and deny infected files.</summary>
    public const string Prevention = "OnAccessPrevention";

    /// <summary><c>OnAccessExtraScanning</c>: also scan files created, moved in or written.</summary>
    public const string ExtraScanning = "OnAccessExtraScanning";

    /// <summary><c>LocalSocket</c>: clamd's unix socket.</summary>
    public const string LocalSocket = "LocalSocket";

    /// <summary><c>TCPSocket</c>: clamd's TCP port.</summary>
    public const string TcpSocket = "TCPSocket";

    /// <summary><c>TCPAddr</c>: an address clamd listens on.</summary>
    public const string TcpAddr = "TCPAddr";

    /// <summary><c>StreamMaxLength</c>: the largest stream clamd accepts.</summary>
    public const string StreamMaxLength = "StreamMaxLength";

    /// <summary><c>TemporaryDirectory</c>: clamd's temporary directory.</summary>
    public const string TemporaryDirectory = "TemporaryDirectory";

    /// <summary><c>DatabaseDirectory</c>: where clamd reads its signatures.</summary>
    public const string DatabaseDirectory = "DatabaseDirectory";
}
