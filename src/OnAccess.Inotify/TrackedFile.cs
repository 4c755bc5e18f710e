using System.Text;
using Microsoft.Win32.SafeHandles;

namespace OnAccess.Inotify;

/// <summary>A file handed to an <see cref="IDirectoryTreeHandler"/>: created, moved in, or written and closed.</summary>
public sealed class TrackedFile
{
    internal TrackedFile(SafeFileHandle file, DirectoryTreeEventKind kind, byte[] rawPath)
    {
        File = file;
        Kind = kind;
        RawPath = rawPath;
    }

    /// <summary>The file, opened read-only; the handler owns it and must dispose it.</summary>
    public SafeFileHandle File { get; }

    /// <summary><see cref="DirectoryTreeEventKind.FileCreated"/>, <see cref="DirectoryTreeEventKind.FileMovedIn"/> or <see cref="DirectoryTreeEventKind.FileClosedWrite"/>.</summary>
    public DirectoryTreeEventKind Kind { get; }

    /// <summary>The path the tree knows it by, as the kernel's bytes (not necessarily UTF-8).</summary>
    public byte[] RawPath { get; }

    /// <summary>The path, for messages (bytes that are not UTF-8 shown as U+FFFD).</summary>
    public string Path => Encoding.UTF8.GetString(RawPath);
}
