using System.Runtime.InteropServices;
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
/// The plan's only window on the system: what a path is (without following a final symlink), whether it is a
/// mount point, and whether it is a whole filesystem. Tests substitute their own.
/// </summary>
internal interface IPlanEnvironment
{
    PathKind GetPathKind(string path);

    bool IsMountPoint(string path);

    /// <summary>The filesystem type when <paramref name="path"/> is the root of a whole filesystem (a mount point that
    /// shows its filesystem's root, not a bind mount of a directory), otherwise <see langword="null"/>.</summary>
    string? WholeFilesystemType(string path);

    /// <summary>The filesystem type of the mount that holds <paramref name="path"/>, or <see langword="null"/> when unknown.</summary>
    string? FilesystemTypeOf(string path);
}

/// <summary>The real filesystem and <c>/proc/self/mountinfo</c>.</summary>
internal sealed class SystemPlanEnvironment : IPlanEnvironment
{
    private readonly string _mountInfoPath;
    private HashSet<string>? _mountPoints;

    public SystemPlanEnvironment(string mountInfoPath = "/proc/self/mountinfo") => _mountInfoPath = mountInfoPath;

    /// <summary>
    /// One statx of the path without following a final link. ENOENT and ENOTDIR mean it does not exist; any other
    /// failure (EACCES, ELOOP, ENAMETOOLONG, EIO) that it cannot be examined, which is not the same thing to tell a user.
    /// </summary>
    public PathKind GetPathKind(string path)
    {
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            return PathKind.Inaccessible; // no such name can exist, and the kernel would see only what precedes the NUL
        }

        return Interop.Libc.GetFileType(path, followLinks: false, out var errno) switch
        {
            null => errno is ENOENT or ENOTDIR ? PathKind.Missing : PathKind.Inaccessible,
            Interop.Libc.S_IFLNK => PathKind.SymbolicLink,
            Interop.Libc.S_IFDIR => PathKind.Directory,
            _ => PathKind.Other,
        };
    }

    private const int ENOENT = 2;
    private const int ENOTDIR = 20;

    public bool IsMountPoint(string path) => (_mountPoints ??= MountTable.Read(_mountInfoPath)).Contains(path);

    public string? WholeFilesystemType(string path) =>
        MountTable.IsWholeFilesystem(path, _mountInfoPath) ? MountTable.FilesystemTypeOf(path, _mountInfoPath) : null;

    public string? FilesystemTypeOf(string path) => MountTable.FilesystemTypeOf(path, _mountInfoPath);
}
