namespace OnAccess.Config;

/// <summary>
/// What resolving a plan found, each naming its directives and, when the options came from a clamd.conf, that file and
/// the line of the value concerned (a repeated value: the repeat's own line).
/// </summary>
internal sealed class PlanFindings(ClamdConf? source)
{
    /// <summary>The file's own diagnostics first, then the plan's.</summary>
    public List<PlanDiagnostic> All { get; } = source is null ? [] : [.. source.Diagnostics];

    public bool Normalize(string directive, string raw, out string path)
    {
        if (PathNormalizer.TryNormalize(raw, out path))
        {
            return true;
        }

        AddAt(PlanDiagnosticCodes.RelativePath, DiagnosticSeverity.Error, $"{directive} '{raw}' is not an absolute path; write it from the root, starting with '/'.", directive, raw);
        return false;
    }

    /// <summary>
    /// OA2007: a repeatable directive names the same value again, which is used once. The line is the repeat's own:
    /// the <paramref name="occurrence"/>-th line of <paramref name="directive"/> whose value <paramref name="matches"/>
    /// (none when the value came from code or a flag, not from the file).
    /// </summary>
    public void AddRepeatedValue(string directive, string shown, int occurrence, Func<string, bool> matches)
    {
        int? line = null;
        if (source is not null)
        {
            var seen = 0;
            foreach (var entry in source.Entries)
            {
                if (entry.Directive == directive && matches(entry.Value) && ++seen == occurrence)
                {
                    line = entry.Line;
                    break;
                }
            }
        }

        All.Add(new PlanDiagnostic(PlanDiagnosticCodes.DuplicateValue, DiagnosticSeverity.Warning, [directive], $"{directive} {shown} is given more than once; it is used once. Remove the repeated value.", source?.FilePath, line));
    }

    public void Add(string code, DiagnosticSeverity severity, string message, params string[] directives) =>
        All.Add(new PlanDiagnostic(code, severity, directives, message, source?.FilePath, LineOf(directives[0], null)));

    public void AddAt(string code, DiagnosticSeverity severity, string message, string directive, string value, params string[] more) =>
        All.Add(new PlanDiagnostic(code, severity, [directive, .. more], message, source?.FilePath, LineOf(directive, value)));

    public int? LineOf(string directive, string? value) => source?.FindLine(directive, value);
}
