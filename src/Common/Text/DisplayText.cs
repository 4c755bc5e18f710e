using System.Buffers;
using System.Globalization;
using System.Text;

namespace OnAccess.Text;

/// <summary>
/// Text that came from someone else (a file name, a threat name), made safe to put in a line of text or a log
/// message: it can neither end the line nor drive the terminal. Backslash, line breaks and tabs become \\ \n \r \t;
/// other control characters (C0, DEL, C1), line and paragraph separators and the bidirectional controls that reorder
/// what a reader sees become \xHH or \uHHHH; bytes that are not UTF-8 become \xHH, so the exact name can be read back.
/// Everything else, any script, is kept as it is.
/// </summary>
internal static class DisplayText
{
    /// <summary>Escapes bytes (a name as the kernel gives it).</summary>
    public static string Escape(ReadOnlySpan<byte> raw)
    {
        var text = new StringBuilder(raw.Length + 8);
        while (!raw.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(raw, out var rune, out var consumed);
            if (status != OperationStatus.Done)
            {
                text.Append(CultureInfo.InvariantCulture, $"\\x{raw[0]:x2}");
                raw = raw[1..];
                continue;
            }

            Append(text, rune);
            raw = raw[consumed..];
        }

        return text.ToString();
    }

    /// <summary>Escapes text; <see langword="null"/> stays <see langword="null"/>.</summary>
    public static string? Escape(string? text)
    {
        if (text is null)
        {
            return null;
        }

        if (!NeedsEscaping(text))
        {
            return text;
        }

        var result = new StringBuilder(text.Length + 8);
        foreach (var rune in text.EnumerateRunes())
        {
            Append(result, rune);
        }

        return result.ToString();
    }

    private static bool NeedsEscaping(string text)
    {
        foreach (var c in text)
        {
            if (c < 0x20 || c == '\\' || c == '\uFFFD' || (c >= 0x7F && (c <= 0x9F || IsInvisibleControl(c))))
            {
                return true;
            }
        }

        return false;
    }

    private static void Append(StringBuilder text, Rune rune)
    {
        switch (rune.Value)
        {
            case '\\':
                text.Append(@"\\");
                break;
            case '\n':
                text.Append(@"\n");
                break;
            case '\r':
                text.Append(@"\r");
                break;
            case '\t':
                text.Append(@"\t");
                break;
            case < 0x20 or 0x7F:
                text.Append(CultureInfo.InvariantCulture, $"\\x{rune.Value:x2}");
                break;
            case (>= 0x80 and <= 0x9F) or 0xFFFD:
                text.Append(CultureInfo.InvariantCulture, $"\\u{rune.Value:x4}");
                break;
            default:
                if (rune.IsBmp && IsInvisibleControl((char)rune.Value))
                {
                    text.Append(CultureInfo.InvariantCulture, $"\\u{rune.Value:x4}");
                }
                else
                {
                    text.Append(rune.ToString());
                }

                break;
        }
    }

    /// <summary>Line and paragraph separators, and the bidirectional marks, embeddings, overrides and isolates.</summary>
    private static bool IsInvisibleControl(char c) =>
        c is '\u061C' or '\u200E' or '\u200F' or '\u2028' or '\u2029' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069');
}
