namespace OnAccess.Inotify;

/// <summary>A directory the tracker starts from.</summary>
/// <param name="Path">An absolute, normalised path.</param>
/// <param name="Recursive">Track every subdirectory (DDD); otherwise only the directory itself.</param>
public sealed record DirectoryTreeRoot(string Path, bool Recursive = true);
