namespace OnAccess.Paths;

/// <summary>The mount points listed in a mountinfo file; written once, linked into Config, Inotify and Core.</summary>
internal static class MountTable
{
    /// <summary>The mount point field (the fifth) of every line, with mountinfo's octal escapes decoded.</summary>
    public static HashSet<string> Read(string mountInfoPath = "/proc/self/mountinfo")
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (var line in File.ReadLines(mountInfoPath))
            {
                var fields = line.Split(' ');
                if (fields.Length > 4)
                {
                    result.Add(DecodeOctalEscapes(fields[4]));
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No mount table (not Linux, or no procfs): nothing is a mount point.
        }

        return result;
    }

    /// <summary>
    /// Whether <paramref name="path"/> is a mount point that shows its filesystem whole: the topmost mount there (the
    /// last line for it) has root <c>/</c>, so every file of that filesystem lies below the path. A bind mount of a
    /// subdirectory does not (its root is the subdirectory).
    /// </summary>
    public static bool IsWholeFilesystem(string path, string mountInfoPath = "/proc/self/mountinfo")
    {
        string? root = null;
        try
        {
            foreach (var line in File.ReadLines(mountInfoPath))
            {
                var fields = line.Split(' ');
                if (fields.Length > 4 && DecodeOctalEscapes(fields[4]) == path)
                {
                    root = DecodeOctalEscapes(fields[3]);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        return root == "/";
    }

    /// <summary>
    /// The filesystem type (mountinfo's fstype: "proc", "tmpfs", "ext4", ...) of the mount that holds
    /// <paramref name="path"/>: the last listed mount whose mount point is the path or one of its ancestors.
    /// </summary>
    public static string? FilesystemTypeOf(string? path, string mountInfoPath = "/proc/self/mountinfo")
    {
        if (path is null)
        {
            return null;
        }

        string? type = null;
        var best = -1;
        try
        {
            foreach (var line in File.ReadLines(mountInfoPath))
            {
                var fields = line.Split(' ');
                var separator = Array.IndexOf(fields, "-");
                if (fields.Length > 4 && separator > 0 && separator + 1 < fields.Length)
                {
                    var mountPoint = DecodeOctalEscapes(fields[4]);
                    if (PathPrefix.IsSameOrUnder(path, mountPoint) && mountPoint.Length >= best)
                    {
                        best = mountPoint.Length;
                        type = fields[separator + 1];
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return type;
    }

    /// <summary>mountinfo writes space, tab, newline and backslash as <c>\ooo</c>.</summary>
    public static string DecodeOctalEscapes(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var chars = new System.Text.StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
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

/// <summary>Ancestry of normalised absolute paths, by whole components.</summary>
internal static class PathPrefix
{
    /// <summary>Whether <paramref name="path"/> is <paramref name="ancestor"/> or lies below it.</summary>
    public static bool IsSameOrUnder(string path, string ancestor) =>
        ancestor == "/"
        || (path.StartsWith(ancestor, StringComparison.Ordinal) && (path.Length == ancestor.Length || path[ancestor.Length] == '/'));

    /// <summary>Whether <paramref name="path"/> lies strictly below <paramref name="ancestor"/>.</summary>
    public static bool IsStrictlyUnder(string path, string ancestor) =>
        !string.Equals(path, ancestor, StringComparison.Ordinal) && IsSameOrUnder(path, ancestor);
}
