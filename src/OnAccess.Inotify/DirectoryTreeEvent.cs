namespace OnAccess.Inotify;

/// <summary>One notification of a <see cref="DirectoryTree"/>.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Path">The directory's or file's path now.</param>
/// <param name="OldPath">For <see cref="DirectoryTreeEventKind.DirectoryMoved"/>, the path before the move.</param>
/// <param name="Reason">For <see cref="DirectoryTreeEventKind.WatchFailed"/>, why.</param>
/// <remarks>Paths are for messages: a name that is not UTF-8 shows U+FFFD in place of its bytes.</remarks>
public sealed record DirectoryTreeEvent(DirectoryTreeEventKind Kind, string Path, string? OldPath = null, string? Reason = null);
