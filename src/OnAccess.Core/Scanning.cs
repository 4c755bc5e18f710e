using Microsoft.Win32.SafeHandles;

namespace OnAccess;

/// <summary>Scans one file. Implementations must be thread-safe: up to <c>MaxThreads</c> scans run at once.</summary>
public interface IScanner
{
    /// <summary>
    /// Scans the file behind <see cref="ScanRequest.File"/>. Read it with <see cref="RandomAccess"/> (or pass the
    /// descriptor on); never reopen <see cref="ScanRequest.Path"/>, which is for display only.
    /// </summary>
    /// <param name="request">The file and who accessed it.</param>
    /// <param name="cancellationToken">Fires at the scan deadline (<c>OnAccessCurlTimeout</c>) or on shutdown.</param>
    /// <returns>Clean, infected, skipped or error.</returns>
    ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken);
}

/// <summary>How a file was accessed.</summary>
public enum AccessKind
{
    /// <summary>Opened.</summary>
    Open,

    /// <summary>Opened to be executed.</summary>
    Exec,

    /// <summary>Read (only with per-read permission events).</summary>
    Read,

    /// <summary>Closed after writing (extra scanning).</summary>
    CloseWrite,

    /// <summary>Created (extra scanning).</summary>
    Created,

    /// <summary>Moved in (extra scanning).</summary>
    MovedIn,
}

/// <summary>One file to scan.</summary>
/// <remarks>
/// <see cref="Path"/> and <see cref="UserId"/> are looked up in procfs the first time they are read (while the
/// accessing process still waits, when the scanner reads them), so a scanner that does not need them does not pay
/// for them on the path of the open.
/// </remarks>
public sealed class ScanRequest
{
    private readonly Func<string?>? _pathSource;
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
        : this(file, (Func<string?>?)null, size, processId, userId, kind)
    {
        _path = path;
        _pathKnown = _userIdKnown = 1;
    }

    /// <summary>A request whose path (from <paramref name="pathSource"/>) and, if not given, user are looked up on first use.</summary>
    internal ScanRequest(SafeFileHandle file, Func<string?>? pathSource, long size, int processId, uint? userId, AccessKind kind)
    {
        ArgumentNullException.ThrowIfNull(file);
        File = file;
        Size = size;
        ProcessId = processId;
        Kind = kind;
        _pathSource = pathSource;
        _userId = userId;
        _pathKnown = pathSource is null ? 1 : 0;
        _userIdKnown = userId is null && processId > 0 ? 0 : 1;
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
                _userId = ProcessIdentity.StatusEffectiveUid(ProcessId);
                Volatile.Write(ref _userIdKnown, 1);
            }

            return _userId;
        }
    }

    /// <summary>How it was accessed.</summary>
    public AccessKind Kind { get; }
}

/// <summary>What a scan found.</summary>
public enum ScanVerdict
{
    /// <summary>Nothing found.</summary>
    Clean,

    /// <summary>A threat was found.</summary>
    Infected,

    /// <summary>The file was not scanned (for example over the scanner's stream limit); never taken as clean.</summary>
    Skipped,

    /// <summary>The scan failed.</summary>
    Error,
}

/// <summary>The result of one scan.</summary>
/// <param name="Verdict">Clean, infected, skipped or error.</param>
/// <param name="ThreatName">The threat's name when infected.</param>
/// <param name="Reason">Why, for skipped and error.</param>
public sealed record ScanResult(ScanVerdict Verdict, string? ThreatName = null, string? Reason = null)
{
    /// <summary>A clean result.</summary>
    public static ScanResult Clean { get; } = new(ScanVerdict.Clean);

    /// <summary>An infected result.</summary>
    /// <param name="threatName">The threat's name.</param>
    /// <returns>The result.</returns>
    public static ScanResult Infected(string threatName) => new(ScanVerdict.Infected, threatName);

    /// <summary>A failed scan.</summary>
    /// <param name="reason">Why it failed.</param>
    /// <returns>The result.</returns>
    public static ScanResult Error(string reason) => new(ScanVerdict.Error, Reason: reason);

    /// <summary>A file that was not scanned.</summary>
    /// <param name="reason">Why.</param>
    /// <returns>The result.</returns>
    public static ScanResult Skipped(string reason) => new(ScanVerdict.Skipped, Reason: reason);
}
