namespace OnAccess.Config;

/// <summary>
/// The one place paths are normalised: absolute, no trailing slash, no <c>.</c> or <c>..</c> components, no <c>//</c>.
/// <c>..</c> is resolved lexically (as the plan is written, before any symlink is looked at).
/// </summary>
internal static class PathNormalizer
{
    public static bool TryNormalize(string? path, out string normalized)
    {
        normalized = string.Empty;
        if (string.IsNullOrEmpty(path) || path[0] != '/' || path.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        var parts = new List<string>();
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            switch (part)
            {
                case ".":
                    break;
                case "..":
                    if (parts.Count > 0)
                    {
                        parts.RemoveAt(parts.Count - 1);
                    }

                    break;
                default:
                    parts.Add(part);
                    break;
            }
        }

        normalized = "/" + string.Join('/', parts);
        return true;
    }
}
