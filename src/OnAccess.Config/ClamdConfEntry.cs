namespace OnAccess.Config;

/// <summary>One directive line of a clamd.conf, as it takes effect.</summary>
/// <param name="Directive">The directive's name.</param>
/// <param name="Value">The value, with surrounding blanks and quotes removed.</param>
/// <param name="Line">The 1-based line it was read from.</param>
public sealed record ClamdConfEntry(string Directive, string Value, int Line);
