using Microsoft.Win32.SafeHandles;
using OnAccess.Fanotify;
using OnAccess.Kernel;

namespace OnAccess;

/// <summary>
/// One access on its way to a decision: the event (or, for extra scanning, a file the tracker opened), what is known
/// of it, and who decides it. It is decided exactly once (<see cref="TryDecide"/>): by its scan, by its deadline, by
/// a full queue or by shutdown, whichever comes first; the others then only clean up.
/// </summary>
internal sealed class WorkItem
{
    private int _decided;
    private int _holds = 2; // the side that decides it, and the side that runs (or drops) its scan

    public WorkItem(FanotifyEvent? e, SafeFileHandle file, AccessKind kind, int processId, uint? userId, long size, byte[]? rawPath, long arrived, GroupState? group, VerdictKey key)
    {
        Event = e;
        File = file;
        Kind = kind;
        ProcessId = processId;
        UserId = userId;
        Size = size;
        RawPath = rawPath;
        Arrived = arrived;
        Group = group;
        Key = key;
    }

    public FanotifyEvent? Event { get; }

    public SafeFileHandle File { get; }

    public AccessKind Kind { get; }

    public int ProcessId { get; }

    public uint? UserId { get; set; }

    public long Size { get; }

    /// <summary>The path as the kernel's bytes, once looked up (for a report, or a path exclusion).</summary>
    public byte[]? RawPath { get; set; }

    /// <summary>When the event was read (Stopwatch timestamp): the deadline counts from here.</summary>
    public long Arrived { get; }

    public GroupState? Group { get; }

    public VerdictKey Key { get; }

    /// <summary>The lease that proves the file unchanged during the scan (null when it cannot be cached).</summary>
    public FileLease? Lease { get; set; }

    /// <summary>Whether the access is held (a permission event): its answer is awaited.</summary>
    public bool IsHeld => Event is { IsPermissionRequest: true };

    /// <summary>Whether its scan is running now (set by the dispatcher around the scanner's call).</summary>
    public volatile bool Scanning;

    // The deadline watch's list (arrival order, so deadline order) and when this item is due there.
    internal WorkItem? Previous;
    internal WorkItem? Next;
    internal long Due;
    internal DeadlineWatch.ListKind List;

    /// <summary>Claims the decision; <see langword="true"/> for the one caller that makes it.</summary>
    public bool TryDecide() => Interlocked.Exchange(ref _decided, 1) == 0;

    /// <summary>
    /// One of the two sides is done with the item (the decision made and reported; the scan over or never run).
    /// <see langword="true"/> for the last: its descriptor may close now, and no one reads it after.
    /// </summary>
    public bool Drop() => Interlocked.Decrement(ref _holds) == 0;

    public bool IsDecided => Volatile.Read(ref _decided) != 0;

    /// <summary>Answers a held access (nothing for one that is not held).</summary>
    public void Answer(AccessDecision decision)
    {
        if (Event is { } e)
        {
            Respond(e, decision == AccessDecision.Deny ? FanotifyResponse.Deny : FanotifyResponse.Allow);
        }
    }

    /// <summary>Answers <paramref name="e"/> if it is held; a closed group (the kernel allowed it) or a killed opener is no error.</summary>
    public static void Respond(FanotifyEvent e, FanotifyResponse response)
    {
        if (!e.IsPermissionRequest)
        {
            return;
        }

        try
        {
            e.Respond(response);
        }
        catch (Exception ex) when (ex is ObjectDisposedException or IOException)
        {
            // The group closed (the kernel allowed it), or the kernel no longer knows the event (the opener was killed).
        }
    }

    /// <summary>Once the last side has dropped it: its lease goes back, its group's count of pending items falls, its descriptor closes.</summary>
    public void Release(CleanVerdicts verdicts)
    {
        verdicts.Release(Lease);
        Lease = null;
        if (Group is { } group)
        {
            Interlocked.Decrement(ref group.Pending);
        }

        if (Event is { } e)
        {
            e.Dispose();
        }
        else
        {
            File.Dispose();
        }
    }
}
