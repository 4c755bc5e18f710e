using System.Text;
using Microsoft.Win32.SafeHandles;

namespace OnAccess;

/// <summary>
/// An infected file as an action sees it: the threat, who accessed it, and a descriptor of the file that was scanned
/// (a duplicate of the event's: the same open file, whatever its path names by now). The path is what it was when the
/// access was decided; someone may have renamed, replaced or linked it since, so an action that touches the path
/// must check that it still names <see cref="Device"/>/<see cref="Inode"/>.
/// </summary>
public sealed class Detection : IDisposable
{
    internal Detection(SafeFileHandle file, byte[]? rawPath, ulong device, ulong inode, long size, string threatName, int processId, uint? userId, AccessKind kind, AccessDecision decision)
    {
        File = file;
        Size = size;
        MountId = OriginalFile.MountOf(file);
        RawPath = rawPath;
        Device = device;
        Inode = inode;
        ThreatName = threatName;
        ProcessId = processId;
        UserId = userId;
        Kind = kind;
        Decision = decision;
        Time = DateTimeOffset.Now;
    }

    /// <summary>The file that was scanned, open for reading (positioned reads: <see cref="RandomAccess"/>).</summary>
    public SafeFileHandle File { get; }

    /// <summary>The path as the kernel's bytes when the access was decided, or null if it could not be read.</summary>
    public byte[]? RawPath { get; }

    /// <summary>The path decoded as UTF-8 (a byte that is not shows as U+FFFD; <see cref="RawPath"/> has it exactly).</summary>
    public string? Path => RawPath is { } raw ? Encoding.UTF8.GetString(raw) : null;

    /// <summary>The file's device (st_dev).</summary>
    public ulong Device { get; }

    /// <summary>The file's inode.</summary>
    public ulong Inode { get; }

    /// <summary>The file's size when it was scanned: what was scanned is its first <see cref="Size"/> bytes.</summary>
    public long Size { get; }

    /// <summary>The mount the file was opened through (stx_mnt_id; 0 where unknown): a path is trusted only through it.</summary>
    internal ulong MountId { get; }

    /// <summary>The scanner's name for what it found.</summary>
    public string ThreatName { get; }

    /// <summary>The process that accessed it (0 for extra scanning, which no process asked for).</summary>
    public int ProcessId { get; }

    /// <summary>Its user, when known.</summary>
    public uint? UserId { get; }

    /// <summary>How it was accessed.</summary>
    public AccessKind Kind { get; }

    /// <summary>What the access was answered (<see cref="AccessDecision.None"/> where nothing was held).</summary>
    public AccessDecision Decision { get; }

    /// <summary>When it was found.</summary>
    public DateTimeOffset Time { get; }

    /// <summary>Closes the duplicate descriptor.</summary>
    public void Dispose() => File.Dispose();
}
