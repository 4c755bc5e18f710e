namespace OnAccess.Config;

/// <summary>
/// The stable codes of <see cref="PlanDiagnostic"/>. OA1xxx are precedence and validation rules of the plan;
/// OA2xxx are notes of the clamd.conf reader. docs/configuration.md explains each one.
/// </summary>
public static class PlanDiagnosticCodes
{
    /// <summary>Info: <c>ScanOnAccess no</c>; nothing is monitored and every other directive is ignored.</summary>
    public const string Disabled = "OA1001";

    /// <summary>Info: <c>ScanOnAccess</c> is absent; monitoring is enabled, as in ClamAV 1.4.</summary>
    public const string EnabledByDefault = "OA1002";

    /// <summary>Warning: a directive is ignored because <c>OnAccessMountPath</c> is set (notify-only, no DDD).</summary>
    public const string IgnoredByMountPath = "OA1003";

    /// <summary>Warning: a directive is ignored because <c>OnAccessDisableDDD yes</c>.</summary>
    public const string IgnoredWithoutDdd = "OA1004";

    /// <summary>Info: with <c>OnAccessDisableDDD yes</c> include paths are watched non-recursively.</summary>
    public const string NonRecursiveIncludes = "OA1005";

    /// <summary>Error: <c>/</c> is an include path while DDD is on.</summary>
    public const string RootInclude = "OA1006";

    /// <summary>Error: monitoring is enabled but there is neither an include path nor a mount path.</summary>
    public const string NothingToWatch = "OA1007";

    /// <summary>Error: a path does not exist.</summary>
    public const string PathMissing = "OA1008";

    /// <summary>Error: an include path is not a directory.</summary>
    public const string NotADirectory = "OA1009";

    /// <summary>Error: an include path is a symbolic link.</summary>
    public const string SymbolicLink = "OA1010";

    /// <summary>Error: a path is relative.</summary>
    public const string RelativePath = "OA1011";

    /// <summary>Error: a mount path is not a mount point.</summary>
    public const string NotAMountPoint = "OA1012";

    /// <summary>Warning: an exclude path lies outside every include path.</summary>
    public const string ExcludeOutsideIncludes = "OA1013";

    /// <summary>Warning: an exclude path equals an include path.</summary>
    public const string ExcludeEqualsInclude = "OA1014";

    /// <summary>Info: duplicate or nested include paths were merged.</summary>
    public const string IncludesMerged = "OA1015";

    /// <summary>Info: <c>OnAccessMaxFileSize 0</c> means no size limit.</summary>
    public const string UnlimitedFileSize = "OA1016";

    /// <summary>Error: <c>OnAccessMaxThreads</c> is 0 (or negative), so no access would ever be answered.</summary>
    public const string NoThreads = "OA1017";

    /// <summary>Error: <c>OnAccessRetryAttempts</c> is outside 0-255.</summary>
    public const string RetryAttemptsOutOfRange = "OA1018";

    /// <summary>Error: <c>OnAccessCurlTimeout</c> (the scan deadline) is not positive.</summary>
    public const string NoScanTimeout = "OA1019";

    /// <summary>Error: <c>OnAccessMaxFileSize</c> is negative.</summary>
    public const string NegativeFileSize = "OA1020";

    /// <summary>Info: duplicate or redundant exclude paths were merged.</summary>
    public const string ExcludesMerged = "OA1021";

    /// <summary>Info: a recursive include path that is a whole filesystem is protected by one filesystem mark.</summary>
    public const string FilesystemMark = "OA1022";

    /// <summary>Error: an include or mount path is the scanner's own directory (clamd's <c>TemporaryDirectory</c> or <c>DatabaseDirectory</c>).</summary>
    public const string ScannerDirectoryIncluded = "OA1023";

    /// <summary>Warning: an include or mount path holds the scanner's own directory, which is excluded.</summary>
    public const string ScannerDirectoryExcluded = "OA1024";

    /// <summary>Info: a recursive include path is protected by one mark on the filesystem that holds it (<see cref="TreeMarking.Filesystem"/>).</summary>
    public const string FilesystemSubtreeMark = "OA1025";

    /// <summary>Warning: a repeated single-valued directive; the first value is kept, as ClamAV does.</summary>
    public const string RepeatedDirective = "OA2001";

    /// <summary>Warning: a SIZE with a leading zero is read as decimal; ClamAV reads it as octal.</summary>
    public const string LeadingZeroSize = "OA2002";

    /// <summary>Warning: a directive that ClamAV 1.4 deprecated is ignored.</summary>
    public const string DeprecatedDirective = "OA2003";

    /// <summary>Warning: a value contains <c>#</c>; clamd.conf has no trailing comments, so it is part of the value.</summary>
    public const string HashInValue = "OA2004";

    /// <summary>Warning: the first <c>OnAccessExcludeUID</c> is 0; clamonacc disables the whole list there, OnAccess excludes UID 0.</summary>
    public const string FirstExcludeUidZero = "OA2005";

    /// <summary>Info: the file has CRLF line endings; OnAccess reads it, clamonacc 1.4 rejects it.</summary>
    public const string CrlfLineEndings = "OA2006";

    /// <summary>Warning: the same value was given twice for a repeatable directive; it is used once.</summary>
    public const string DuplicateValue = "OA2007";
}
