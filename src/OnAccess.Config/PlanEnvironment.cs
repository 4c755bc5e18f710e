namespace OnAccess.Config;

/// <summary>What a path is, as far as the plan cares.</summary>
internal enum PathKind
{
    Missing,
    Directory,
    SymbolicLink,
    Other,
    Inaccessible,
}

/// <summary>
/// The plan's only window on the system: what a path is (without following a final symlink) and whether it is a
/// mount point. Tests substitute their own.
/// </summary>
internal interface IPlanEnvironment
{
    PathKind GetPathKind(string path);

    bool IsMountPoint(string path);
}

/// <summary>The real filesystem and <c>/proc/self/mountinfo</c>.</summary>
internal sealed class SystemPlanEnvironment : IPlanEnvironment
{
    private readonly string _mountInfoPath;
    private HashSet<string>? _mountPoints;

    public SystemPlanEnvironment(string mountInfoPath = "/proc/self/mountinfo") => _mountInfoPath = mountInfoPath;

    public PathKind GetPathKind(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists && !Directory.Exists(path) && info.LinkTarget is null)
            {
                return PathKind.Missing;
            }

            if (info.LinkTarget is not null)
            {
                return PathKind.SymbolicLink;
            }

            return (info.Attributes & FileAttributes.Directory) != 0 ? PathKind.Directory : PathKind.Other;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return PathKind.Inaccessible;
        }
    }

    public bool IsMountPoint(string path) => (_mountPoints ??= ReadMountPoints(_mountInfoPath)).Contains(path);

    /// <summary>The mount point field (the fifth) of every line of a mountinfo file, with octal escapes decoded.</summary>
    internal static HashSet<string> ReadMountPoints(string mountInfoPath)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        string[] lines;
        try
        {
            lines = File.ReadAllLines(mountInfoPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return result;
        }

        foreach (var line in lines)
        {
            var fields = line.Split(' ');
            if (fields.Length > 4)
            {
                result.Add(DecodeOctalEscapes(fields[4]));
            }
        }

        return result;
    }

    /// <summary>mountinfo writes space, tab, newline and backslash as <c>\ooo</c>.</summary>
    internal static string DecodeOctalEscapes(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var chars = new System.Text.StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length
                && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                chars.Append((char)(((field[i + 1] - '0') * 64) + ((field[i + 2] - '0') * 8) + (field[i + 3] - '0')));
                i += 3;
            }
            else
            {
                chars.Append(field[i]);
            }
        }

        return chars.ToString();

        static bool IsOctal(char c) => c is >= '0' and <= '7';
    }
}
