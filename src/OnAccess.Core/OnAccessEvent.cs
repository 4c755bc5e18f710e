namespace OnAccess;

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
