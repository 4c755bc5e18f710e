namespace OnAccess;

/// <summary>Why a decision was made.</summary>
public enum DecisionReason
{
    /// <summary>The scanner's verdict decided.</summary>
    Scanned,

    /// <summary>The file was found clean before and has not changed since (same signatures).</summary>
    Cached,

    /// <summary>The accessing process's effective UID is excluded.</summary>
    ExcludedUser,

    /// <summary>
    /// The file lies under an exclude path. Excluded directories are not marked, so the kernel reports such an access
    /// only in the moment between a directory's move under an exclude path and the tracker taking its mark away.
    /// </summary>
    ExcludedPath,

    /// <summary>The file is larger than <c>OnAccessMaxFileSize</c>.</summary>
    TooLarge,

    /// <summary>Not a regular file: answered unscanned (a FIFO's reader could wait forever). Linux 6.x raises no open events for FIFOs, devices or sockets.</summary>
    NotRegularFile,

    /// <summary>The scan queue was full.</summary>
    QueueFull,

    /// <summary>The scan failed after its retries (<c>OnAccessDenyOnError</c> decides).</summary>
    ScanError,

    /// <summary>No verdict within <c>OnAccessCurlTimeout</c> of the access (waiting for a slot included): <c>OnAccessDenyOnError</c> decides.</summary>
    Timeout,

    /// <summary>The monitor is stopping.</summary>
    Shutdown,

    /// <summary>
    /// The scanner could not scan the file (over its limits, such as clamd's StreamMaxLength, or the file changed while
    /// it was read): never taken as clean; <c>OnAccessDenyOnError</c> decides.
    /// </summary>
    Unscannable,
}
