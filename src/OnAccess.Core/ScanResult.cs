namespace OnAccess;

/// <summary>The result of one scan.</summary>
/// <param name="Verdict">Clean, infected, skipped or error.</param>
/// <param name="ThreatName">The threat's name when infected.</param>
/// <param name="Reason">Why, for skipped and error.</param>
public sealed record ScanResult(ScanVerdict Verdict, string? ThreatName = null, string? Reason = null)
{
    /// <summary>A clean result.</summary>
    public static ScanResult Clean { get; } = new(ScanVerdict.Clean);

    /// <summary>An infected result.</summary>
    /// <param name="threatName">The threat's name.</param>
    /// <returns>The result.</returns>
    public static ScanResult Infected(string threatName) => new(ScanVerdict.Infected, threatName);

    /// <summary>A failed scan.</summary>
    /// <param name="reason">Why it failed.</param>
    /// <returns>The result.</returns>
    public static ScanResult Error(string reason) => new(ScanVerdict.Error, Reason: reason);

    /// <summary>A file that was not scanned.</summary>
    /// <param name="reason">Why.</param>
    /// <returns>The result.</returns>
    public static ScanResult Skipped(string reason) => new(ScanVerdict.Skipped, Reason: reason);
}
