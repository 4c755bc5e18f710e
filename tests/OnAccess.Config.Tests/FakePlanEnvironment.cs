namespace OnAccess.Config.Tests;

/// <summary>A filesystem of named directories, files, links and mount points; everything else is missing.</summary>
internal sealed class FakePlanEnvironment : IPlanEnvironment
{
    public Dictionary<string, PathKind> Paths { get; } = new(StringComparer.Ordinal) { ["/"] = PathKind.Directory };

    public HashSet<string> MountPoints { get; } = new(StringComparer.Ordinal) { "/" };

    /// <summary>Roots of whole filesystems and their types (a mount point not listed here is a bind mount of a directory).</summary>
    public Dictionary<string, string> WholeFilesystems { get; } = new(StringComparer.Ordinal);

    public FakePlanEnvironment Dir(params string[] paths)
    {
        foreach (var p in paths)
        {
            Paths[p] = PathKind.Directory;
        }

        return this;
    }

    public PathKind GetPathKind(string path) => Paths.GetValueOrDefault(path, PathKind.Missing);

    public bool IsMountPoint(string path) => MountPoints.Contains(path);

    public string? WholeFilesystemType(string path) => WholeFilesystems.GetValueOrDefault(path);

    public string? FilesystemTypeOf(string path) => "ext4";
}
