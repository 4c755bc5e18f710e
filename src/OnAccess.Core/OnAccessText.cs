using OnAccess.Text;

namespace OnAccess;

/// <summary>
/// Someone else's text (a file name, a threat name) made safe for a line of text or a log: backslash, line breaks and
/// tabs become <c>\\ \n \r \t</c>; other control characters, line and paragraph separators and bidirectional controls
/// become <c>\xHH</c> or <c>\uHHHH</c>; bytes that are not UTF-8 become <c>\xHH</c>. Everything else is kept.
/// </summary>
public static class OnAccessText
{
    /// <summary>Escapes a name given as the kernel's bytes (see <see cref="OnAccessEvent.RawPath"/>).</summary>
    /// <param name="raw">The bytes.</param>
    /// <returns>One line of text that shows them exactly.</returns>
    public static string Escape(ReadOnlySpan<byte> raw) => DisplayText.Escape(raw);

    /// <summary>Escapes text.</summary>
    /// <param name="text">The text, or <see langword="null"/>.</param>
    /// <returns>The escaped text, or <see langword="null"/>.</returns>
    public static string? Escape(string? text) => DisplayText.Escape(text);
}
