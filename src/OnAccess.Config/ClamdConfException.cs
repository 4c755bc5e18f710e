namespace OnAccess.Config;

/// <summary>
/// A clamd.conf that cannot be used: the file, the line, the directive and a sentence that says what is wrong.
/// Reading a configuration throws this exception and no other.
/// </summary>
public sealed class ClamdConfException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="filePath">The file that was read, or <see langword="null"/> for text without a file.</param>
    /// <param name="line">The 1-based line, or <see langword="null"/> when the problem is not on one line.</param>
    /// <param name="directive">The directive involved, or <see langword="null"/>.</param>
    /// <param name="reason">A plain sentence that says what is wrong and how to fix it.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public ClamdConfException(string? filePath, int? line, string? directive, string reason, Exception? innerException = null)
        : base(Format(filePath, line, directive, reason), innerException)
    {
        FilePath = filePath;
        Line = line;
        Directive = directive;
        Reason = reason;
    }

    /// <summary>The file that was read, or <see langword="null"/> for text without a file.</summary>
    public string? FilePath { get; }

    /// <summary>The 1-based line, or <see langword="null"/>.</summary>
    public int? Line { get; }

    /// <summary>The directive involved, or <see langword="null"/>.</summary>
    public string? Directive { get; }

    /// <summary>What is wrong, as a sentence.</summary>
    public string Reason { get; }

    internal static string Format(string? filePath, int? line, string? directive, string reason)
    {
        var where = (filePath ?? "clamd.conf") + (line is { } l ? ":" + l.ToString(System.Globalization.CultureInfo.InvariantCulture) : string.Empty);
        return directive is null ? $"{where}: {reason}" : $"{where}: {Shown(directive)}: {reason}";
    }

    /// <summary>A directive as the file has it, made safe for one line of a message: escaped, and cut when it is long.</summary>
    private static string Shown(string directive) =>
        OnAccess.Text.DisplayText.Escape(directive.Length > 64 ? directive[..64] + "..." : directive)!;
}
