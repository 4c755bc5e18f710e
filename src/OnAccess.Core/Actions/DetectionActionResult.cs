namespace OnAccess;

/// <summary>What came of one action on one detection.</summary>
/// <param name="Outcome">Done, refused (nothing touched, for a reason worth knowing: the path was swapped), or failed.</param>
/// <param name="Detail">What was done, or why not (a sentence; a path in it is escaped).</param>
/// <param name="Id">What the action made of it, if anything (a quarantine entry's id).</param>
public sealed record DetectionActionResult(DetectionActionOutcome Outcome, string Detail, string? Id = null)
{
    /// <summary>Done.</summary>
    public static DetectionActionResult Done(string detail, string? id = null) => new(DetectionActionOutcome.Done, detail, id);

    /// <summary>Refused: nothing was touched.</summary>
    public static DetectionActionResult Refused(string detail, string? id = null) => new(DetectionActionOutcome.Refused, detail, id);

    /// <summary>Failed: what it was to do did not happen.</summary>
    public static DetectionActionResult Failed(string detail, string? id = null) => new(DetectionActionOutcome.Failed, detail, id);
}

/// <summary>How an action ended.</summary>
public enum DetectionActionOutcome
{
    /// <summary>It did what it was to do.</summary>
    Done,

    /// <summary>It chose not to, and touched nothing (the path no longer names the file that was scanned, say).</summary>
    Refused,

    /// <summary>It could not (no space, no permission, a command that failed or timed out).</summary>
    Failed,

    /// <summary>It never ran: the action queue was full (or the monitor stopped first).</summary>
    Dropped,
}
