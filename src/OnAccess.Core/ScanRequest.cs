using Microsoft.Win32.SafeHandles;

namespace OnAccess;

/// <summary>One file to scan.</summary>
/// <remarks>
/// <see cref="Path"/> and <see cref="UserId"/> are looked up (procfs, the event's pidfd) the first time they are read (while the
/// accessing process still waits, when the scanner reads them), so a scanner that does not need them does not pay
/// for them on the path of the open.
/// </remarks>
public sealed class ScanRequest
{
    private readonly Func<string?>? _pathSource;
    private readonly Func<uint?>? _userSource;
    private string? _path;
    private uint? _userId;
    private int _pathKnown;
    private int _userIdKnown;

    /// <summary>Creates a request whose path and user are known.</summary>
    /// <param name="file">The open file: the kernel's event descriptor, or one OnAccess opened for extra scanning. Read it with <see cref="RandomAccess"/>; do not dispose it.</param>
    /// <param name="path">The path, for display only.</param>
    /// <param name="size">The size in bytes when the access happened.</param>
    /// <param name="processId">The accessing process, or 0 when unknown (extra scanning).</param>
    /// <param name="userId">The accessing process's effective UID, when known.</param>
    /// <param name="kind">How it was accessed.</param>
    public ScanRequest(SafeFileHandle file, string? path, long size, int processId, uint? userId, AccessKind kind)
        : this(file, (Func<string?>?)null, size, processId, userId, null, kind)
    {
        _path = path;
        _pathKnown = _userIdKnown = 1;
    }

    /// <summary>A request whose path (from <paramref name="pathSource"/>) and, if not given, user (from <paramref name="userSource"/>) are looked up on first use.</summary>
    internal ScanRequest(SafeFileHandle file, Func<string?>? pathSource, long size, int processId, uint? userId, Func<uint?>? userSource, AccessKind kind)
    {
        ArgumentNullException.ThrowIfNull(file);
        File = file;
        Size = size;
        ProcessId = processId;
        Kind = kind;
        _pathSource = pathSource;
        _userId = userId;
        _userSource = userSource;
        _pathKnown = pathSource is null ? 1 : 0;
        _userIdKnown = userId is null && userSource is not null ? 0 : 1;
    }

    /// <summary>The open file. Read it with <see cref="RandomAccess"/>; do not dispose it.</summary>
    public SafeFileHandle File { get; }

    /// <summary>
    /// The path, for display only; <see langword="null"/> when it cannot be found. Looked up the first time it is read,
    /// which must be during the scan: once the access is decided its descriptor is closed and the path is unknown.
    /// </summary>
    public string? Path
    {
        get
        {
            if (Volatile.Read(ref _pathKnown) == 0)
            {
                try
                {
                    _path = _pathSource!();
                }
                catch (ObjectDisposedException)
                {
                    _path = null; // read after the access was decided and its descriptor closed
                }

                Volatile.Write(ref _pathKnown, 1);
            }

            return _path;
        }
    }

    /// <summary>The size in bytes when the access happened.</summary>
    public long Size { get; }

    /// <summary>The accessing process, or 0 when unknown (extra scanning).</summary>
    public int ProcessId { get; }

    /// <summary>The accessing process's effective UID, when known (a process that already exited has none).</summary>
    public uint? UserId
    {
        get
        {
            if (Volatile.Read(ref _userIdKnown) == 0)
            {
                _userId = _userSource!();
                Volatile.Write(ref _userIdKnown, 1);
            }

            return _userId;
        }
    }

    /// <summary>How it was accessed.</summary>
    public AccessKind Kind { get; }
}
