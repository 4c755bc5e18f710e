namespace OnAccess.Inotify;

/// <summary>
/// What the owner of a <see cref="DirectoryTree"/> does with what it tracks. The tracker calls it on its own thread,
/// in the order things happened, with descriptors of the very directories and files (opened relative to their parent,
/// never following a link, never by re-resolving a path string), so a name an attacker swaps in between cannot
/// redirect it. Implementations must not block and must not call back into the tree.
/// </summary>
public interface IDirectoryTreeHandler
{
    /// <summary>
    /// A directory is now tracked: protect it (for example mark it). Called after its watch exists and before its
    /// entries are read, so nothing created in it escapes. Throw <see cref="IOException"/> (or
    /// <see cref="UnauthorizedAccessException"/>) when it cannot be protected: the tracker then does not track it and
    /// tries again later, with backoff, reporting it meanwhile (<see cref="DirectoryTree.UnprotectedCount"/>).
    /// </summary>
    /// <param name="directory">The directory; its descriptor is valid for the call only.</param>
    void DirectoryAdded(TrackedDirectory directory);

    /// <summary>
    /// A directory that still exists is no longer tracked: moved out of the tree, or under an exclusion. Its
    /// descriptor was opened by its file handle, so it is the directory that was protected, wherever it is now.
    /// (A deleted directory is not reported here: it took its marks with it.)
    /// </summary>
    /// <param name="directory">The directory; its descriptor is valid for the call only.</param>
    void DirectoryRemoved(TrackedDirectory directory);

    /// <summary>
    /// With <see cref="DirectoryTreeOptions.ReportFiles"/>: a regular file was created, moved in or written and closed
    /// in a tracked directory. It was opened read-only relative to its directory without following a link, after its
    /// type was checked on a path descriptor (a device, FIFO or socket is never opened).
    /// </summary>
    /// <param name="file">The file; the handler owns its descriptor and must dispose it.</param>
    void FileChanged(TrackedFile file);
}
