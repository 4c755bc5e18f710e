namespace OnAccess.Config;

/// <summary>
/// Reads clamd.conf text line by line: each directive checked against the table and its value against its type,
/// with a diagnostic (file and line) for whatever ClamAV would warn about or refuse; the first error is a
/// <see cref="ClamdConfException"/>.
/// </summary>
internal sealed class ClamdConfReader(string? filePath)
{
    private readonly List<ClamdConfEntry> _entries = [];
    private readonly List<PlanDiagnostic> _diagnostics = [];
    private readonly Dictionary<string, int> _firstLine = new(StringComparer.Ordinal);
    private bool _crlfReported;

    public ClamdConf Read(string text)
    {
        // Lines end at '\n' only, as in ClamAV; a '\r' before it (CRLF files) is dropped, unlike clamonacc.
        var rest = text.AsSpan();
        var lineNumber = 0;
        while (!rest.IsEmpty)
        {
            lineNumber++;
            var end = rest.IndexOf('\n');
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 1)..];
            if (line.EndsWith('\r'))
            {
                line = line[..^1];
                ReportCrlf();
            }

            ReadLine(line, lineNumber);
        }

        return new ClamdConf(filePath, _entries, _diagnostics);
    }

    private void ReportCrlf()
    {
        if (!_crlfReported)
        {
            _crlfReported = true;
            Note(PlanDiagnosticCodes.CrlfLineEndings, DiagnosticSeverity.Info, [], "The file has CRLF (Windows) line endings. OnAccess reads it; ClamAV 1.4's clamonacc rejects every BOOL, NUMBER and SIZE value in such a file.", null);
        }
    }

    private void ReadLine(ReadOnlySpan<char> line, int lineNumber)
    {
        line = line.TrimStart(" \t");
        if (line.IsEmpty || line[0] == '#')
        {
            return;
        }

        if (line.StartsWith("Example", StringComparison.Ordinal))
        {
            throw Error(lineNumber, null, "the line starts with 'Example': this is ClamAV's example file. Edit it and remove the 'Example' line before using it.");
        }

        var nameEnd = line.IndexOfAny(' ', '\t');
        var name = (nameEnd < 0 ? line : line[..nameEnd]).ToString();
        if (!ClamdDirectiveTable.ByName.TryGetValue(name, out var directive))
        {
            throw Error(lineNumber, name, UnknownDirectiveMessage(name));
        }

        var value = nameEnd < 0 ? string.Empty : line[nameEnd..].Trim(" \t").ToString();
        if (value.Length == 0)
        {
            throw Error(lineNumber, name, $"the directive needs a value ({Describe(directive.Type)}).");
        }

        if (value[0] == '"')
        {
            var close = value.LastIndexOf('"');
            if (close == 0)
            {
                throw Error(lineNumber, name, "the value opens a double quote that is never closed.");
            }

            if (close != value.Length - 1)
            {
                throw Error(lineNumber, name, $"there is text after the closing double quote ('{value[(close + 1)..]}'); clamd.conf has no trailing comments.");
            }

            value = value[1..close];
            if (value.Length == 0)
            {
                throw Error(lineNumber, name, "the quoted value is empty; ClamAV rejects an empty value.");
            }
        }

        CheckValue(directive, value, lineNumber);

        if (directive.Deprecated)
        {
            var honoured = directive.Name == ClamdDirectiveNames.ScanOnAccess;
            Note(
                PlanDiagnosticCodes.DeprecatedDirective,
                honoured ? DiagnosticSeverity.Info : DiagnosticSeverity.Warning,
                [name],
                honoured
                    ? $"{name} is deprecated since ClamAV 0.102 and clamonacc ignores it; OnAccess honours it as the 2016 on-access guide describes ('no' turns monitoring off)."
                    : $"{name} is deprecated in ClamAV 1.4 and is ignored.",
                lineNumber);
        }

        if (!directive.Repeatable && _firstLine.TryGetValue(name, out var first))
        {
            Note(PlanDiagnosticCodes.RepeatedDirective, DiagnosticSeverity.Warning, [name], $"{name} is repeated; the first value (line {first}) is kept and this one ('{value}') is ignored, as ClamAV does.", lineNumber);
            return;
        }

        if (name == ClamdDirectiveNames.ExcludeUid && value.TrimStart('0').Length == 0 && !_firstLine.ContainsKey(name))
        {
            Note(PlanDiagnosticCodes.FirstExcludeUidZero, DiagnosticSeverity.Warning, [name], $"The first {name} is 0: clamonacc then disables the whole UID list, while OnAccess excludes UID 0 (root) like any other UID. Use OnAccessExcludeRootUID yes to say so plainly.", lineNumber);
        }

        _firstLine.TryAdd(name, lineNumber);
        if (!directive.Deprecated || directive.Name == ClamdDirectiveNames.ScanOnAccess)
        {
            _entries.Add(new ClamdConfEntry(name, value, lineNumber));
        }
    }

    private void CheckValue(ClamdDirective directive, string value, int lineNumber)
    {
        var name = directive.Name;
        var hint = value.Contains('#', StringComparison.Ordinal) ? " clamd.conf has no trailing comments: '#' after a value is part of the value." : string.Empty;
        switch (directive.Type)
        {
            case DirectiveType.Bool when !ClamdValueSyntax.TryParseBool(value, out _):
                throw Error(lineNumber, name, $"'{value}' is not a BOOL; use yes, no, true, false, 1 or 0.{hint}");

            case DirectiveType.Number:
                long max = name switch
                {
                    ClamdDirectiveNames.ExcludeUid => ClamdConf.MaxUid,
                    ClamdDirectiveNames.TcpSocket => 65535,
                    _ => int.MaxValue,
                };
                if (!ClamdValueSyntax.TryParseNumber(value, max, out var number))
                {
                    throw Error(lineNumber, name, number == -1
                        ? $"{value} is too large; the largest accepted value is {max}."
                        : $"'{value}' is not a NUMBER; use decimal digits only, without a sign.{hint}");
                }

                break;

            case DirectiveType.Size:
                if (!ClamdValueSyntax.TryParseSize(value, out var size, out var leadingZero))
                {
                    throw Error(lineNumber, name, size == -1
                        ? $"{value} is too large."
                        : $"'{value}' is not a SIZE; use decimal digits with an optional K, M or G suffix (for example 5M).{hint}");
                }

                if (leadingZero)
                {
                    Note(PlanDiagnosticCodes.LeadingZeroSize, DiagnosticSeverity.Warning, [name], $"{name} {value} has a leading zero: OnAccess reads it as decimal ({size} bytes), but ClamAV reads it as octal. Remove the leading zero.", lineNumber);
                }

                break;

            case DirectiveType.String when hint.Length > 0:
                Note(PlanDiagnosticCodes.HashInValue, DiagnosticSeverity.Warning, [name], $"The value '{value}' contains '#'.{hint}", lineNumber);
                break;
        }
    }

    private static string UnknownDirectiveMessage(string name)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var known in ClamdDirectiveTable.ByName.Keys)
        {
            if (string.Equals(known, name, StringComparison.OrdinalIgnoreCase))
            {
                return $"unknown directive; directive names are case-sensitive: did you mean '{known}'?";
            }

            var distance = EditDistance(name.ToUpperInvariant(), known.ToUpperInvariant());
            if (distance < bestDistance)
            {
                (best, bestDistance) = (known, distance);
            }
        }

        return best is not null && bestDistance <= Math.Max(2, name.Length / 4)
            ? $"unknown directive; did you mean '{best}'?"
            : "unknown directive; clamd 1.4 does not accept it (see docs/configuration.md for the directives OnAccess reads).";
    }

    private static int EditDistance(string a, string b)
    {
        if (Math.Abs(a.Length - b.Length) > 8)
        {
            return int.MaxValue;
        }

        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    private static string Describe(DirectiveType type) => type switch
    {
        DirectiveType.Bool => "BOOL: yes or no",
        DirectiveType.Number => "NUMBER: decimal digits",
        DirectiveType.Size => "SIZE: digits with an optional K, M or G",
        _ => "STRING",
    };

    private void Note(string code, DiagnosticSeverity severity, IReadOnlyList<string> directives, string message, int? line) =>
        _diagnostics.Add(new PlanDiagnostic(code, severity, directives, message, filePath, line));

    private ClamdConfException Error(int line, string? directive, string reason) => new(filePath, line, directive, reason);
}
