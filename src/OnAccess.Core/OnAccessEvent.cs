namespace OnAccess;

/// <summary>What was done with an access.</summary>
public enum AccessDecision
{
    /// <summary>Nothing was held (notification mode, extra scanning).</summary>
    None,

    /// <summary>The access was allowed.</summary>
    Allow,

    /// <summary>The access was denied (the caller got EPERM).</summary>
    Deny,
}

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

/// <summary>One decision, as observers and logs see it.</summary>
/// <param name="Path">The file's path, for display (bytes that are not UTF-8 show as U+FFFD; <see cref="RawPath"/> has them exactly).
/// It is someone else's text: escape it before writing it in a line (<see cref="OnAccessText.Escape(string?)"/>).</param>
/// <param name="ProcessId">The accessing process (0 for extra scanning).</param>
/// <param name="UserId">Its effective UID, when known.</param>
/// <param name="Kind">How the file was accessed.</param>
/// <param name="Verdict">The scan's verdict, or <see langword="null"/> when no scan ran.</param>
/// <param name="ThreatName">The threat, when infected.</param>
/// <param name="Decision">Allow, deny, or none (nothing was held).</param>
/// <param name="Reason">Why.</param>
/// <param name="Latency">From the event's arrival to the answer (or to the verdict, when nothing was held).</param>
/// <param name="Detail">The scanner's or the engine's explanation, when there is one.</param>
public sealed record OnAccessEvent(
    string? Path,
    int ProcessId,
    uint? UserId,
    AccessKind Kind,
    ScanVerdict? Verdict,
    string? ThreatName,
    AccessDecision Decision,
    DecisionReason Reason,
    TimeSpan Latency,
    string? Detail = null)
{
    /// <summary>The file's path exactly as the kernel gives it (a name need not be UTF-8), or <see langword="null"/> when unknown.</summary>
    public byte[]? RawPath { get; init; }
}

/// <summary>Receives every decision, off the decision path, in order. Must not block for long.</summary>
public interface IOnAccessObserver
{
    /// <summary>Called once per decision.</summary>
    /// <param name="accessEvent">The decision.</param>
    void OnEvent(OnAccessEvent accessEvent);
}
