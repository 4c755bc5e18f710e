namespace OnAccess;

/// <summary>Where infected files go, and whether the original stays (clamonacc's <c>--move</c> and <c>--copy</c>).</summary>
public sealed class QuarantineOptions
{
    /// <summary>The quarantine directory: created 0700 if missing; if it exists it must be this user's and closed to others.</summary>
    public string Directory { get; set; } = string.Empty;

    /// <summary>Move (the original is removed once its content is stored) or copy (the original stays).</summary>
    public QuarantineMode Mode { get; set; } = QuarantineMode.Move;
}

/// <summary>What quarantining does with the original.</summary>
public enum QuarantineMode
{
    /// <summary>Store the content, then remove the original if its path still names the file that was scanned.</summary>
    Move,

    /// <summary>Store the content; the original stays.</summary>
    Copy,
}
