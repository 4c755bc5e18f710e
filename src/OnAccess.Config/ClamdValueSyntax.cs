using System.Globalization;

namespace OnAccess.Config;

/// <summary>ClamAV's value syntax for BOOL, NUMBER and SIZE, checked and converted in one place.</summary>
internal static class ClamdValueSyntax
{
    private static readonly string[] TrueTokens = ["yes", "true", "1"];
    private static readonly string[] FalseTokens = ["no", "false", "0"];

    public static bool TryParseBool(string value, out bool result)
    {
        foreach (var token in TrueTokens)
        {
            if (string.Equals(value, token, StringComparison.OrdinalIgnoreCase))
            {
                result = true;
                return true;
            }
        }

        foreach (var token in FalseTokens)
        {
            if (string.Equals(value, token, StringComparison.OrdinalIgnoreCase))
            {
                result = false;
                return true;
            }
        }

        result = false;
        return false;
    }

    /// <summary>Digits only (ASCII), no sign; the value must fit <paramref name="max"/>.</summary>
    public static bool TryParseNumber(string value, long max, out long result)
    {
        result = 0;
        if (value.Length == 0)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            if (result > (max - (c - '0')) / 10)
            {
                result = -1; // too large: distinguishable from a syntax error
                return false;
            }

            result = (result * 10) + (c - '0');
        }

        return true;
    }

    /// <summary>Digits with an optional K/M/G suffix in any case; binary multiples; decimal even with a leading zero.</summary>
    public static bool TryParseSize(string value, out long result, out bool leadingZero)
    {
        result = 0;
        leadingZero = false;
        if (value.Length == 0)
        {
            return false;
        }

        long multiplier = 1;
        var digits = value;
        switch (value[^1])
        {
            case 'k' or 'K':
                multiplier = 1L << 10;
                digits = value[..^1];
                break;
            case 'm' or 'M':
                multiplier = 1L << 20;
                digits = value[..^1];
                break;
            case 'g' or 'G':
                multiplier = 1L << 30;
                digits = value[..^1];
                break;
        }

        if (!TryParseNumber(digits, long.MaxValue / multiplier, out var number))
        {
            result = number; // -1 when too large
            return false;
        }

        leadingZero = digits.Length > 1 && digits[0] == '0';
        result = number * multiplier;
        return true;
    }

    public static string FormatBool(bool value) => value ? "yes" : "no";

    public static string FormatSize(long bytes)
    {
        const long G = 1L << 30, M = 1L << 20, K = 1L << 10;
        return bytes switch
        {
            0 => "0",
            _ when bytes % G == 0 => (bytes / G).ToString(CultureInfo.InvariantCulture) + "G",
            _ when bytes % M == 0 => (bytes / M).ToString(CultureInfo.InvariantCulture) + "M",
            _ when bytes % K == 0 => (bytes / K).ToString(CultureInfo.InvariantCulture) + "K",
            _ => bytes.ToString(CultureInfo.InvariantCulture),
        };
    }
}
