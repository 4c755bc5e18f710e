using OnAccess.Paths;

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

    public bool IsMountPoint(string path) => (_mountPoints ??= MountTable.Read(_mountInfoPath)).Contains(path);
}
