namespace OnAccess.Config;

/// <summary>
/// One explained decision of the configuration reader or of <see cref="OnAccessPlan.Resolve(OnAccessOptions)"/>:
/// a stable code (see <see cref="PlanDiagnosticCodes"/>), its severity, the directives involved, and a sentence.
/// </summary>
/// <param name="Code">The stable code, such as <c>OA1003</c>; docs/configuration.md lists every one.</param>
/// <param name="Severity">How much it matters.</param>
/// <param name="Directives">The clamd.conf directives involved, by their ClamAV names.</param>
/// <param name="Message">A sentence a person understands, naming the directives.</param>
/// <param name="FilePath">The clamd.conf the directive came from, when known.</param>
/// <param name="Line">The 1-based line in <paramref name="FilePath"/>, when known.</param>
public sealed record PlanDiagnostic(
    string Code,
    DiagnosticSeverity Severity,
    IReadOnlyList<string> Directives,
    string Message,
    string? FilePath = null,
    int? Line = null)
{
    /// <summary>Formats the diagnostic as <c>file:line: severity CODE: message</c>.</summary>
    /// <returns>The one-line form used in logs and by check-config.</returns>
    public override string ToString()
    {
        var where = FilePath is null ? string.Empty : FilePath + (Line is { } l ? ":" + l.ToString(System.Globalization.CultureInfo.InvariantCulture) : string.Empty) + ": ";
        return $"{where}{Severity.ToString().ToLowerInvariant()} {Code}: {Message}";
    }
}
