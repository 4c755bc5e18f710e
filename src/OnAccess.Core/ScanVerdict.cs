namespace OnAccess;

/// <summary>What a scan found.</summary>
public enum ScanVerdict
{
    /// <summary>Nothing found.</summary>
    Clean,

    /// <summary>A threat was found.</summary>
    Infected,

    /// <summary>The file was not scanned (for example over the scanner's stream limit); never taken as clean.</summary>
    Skipped,

    /// <summary>The scan failed.</summary>
    Error,
}
