namespace OnAccess;

/// <summary>Counters of a monitor.</summary>
public sealed record OnAccessStatistics
{
    /// <summary>Kernel events received.</summary>
    public long Events { get; init; }

    /// <summary>Scans run (retries included).</summary>
    public long Scans { get; init; }

    /// <summary>Accesses allowed.</summary>
    public long Allowed { get; init; }

    /// <summary>Accesses denied.</summary>
    public long Denied { get; init; }

    /// <summary>Infected files found.</summary>
    public long Infected { get; init; }

    /// <summary>Scans that failed or timed out after their retries.</summary>
    public long Errors { get; init; }

    /// <summary>Accesses allowed from the user-space verdict cache (kernel-cached opens never reach the engine).</summary>
    public long CacheHits { get; init; }

    /// <summary>Times every cached verdict was dropped because the scanner's signatures changed.</summary>
    public long CacheResets { get; init; }

    /// <summary>Accesses skipped: own process, excluded user or path, too large, not a regular file.</summary>
    public long Skipped { get; init; }

    /// <summary>Events answered because the scan queue was full.</summary>
    public long QueueFull { get; init; }

    /// <summary>Kernel queue overflows (fanotify and inotify).</summary>
    public long Overflows { get; init; }

    /// <summary>Accesses the kernel denied because it could not deliver the event (EMFILE and the like).</summary>
    public long KernelDenied { get; init; }

    /// <summary>Directories protected now: each holds a directory mark, or lies on a filesystem a filesystem mark holds whole.</summary>
    public long MarkedDirectories { get; init; }

    /// <summary>Events waiting for a scan now.</summary>
    public long QueueDepth { get; init; }

    /// <summary>Scans running now.</summary>
    public long ScansInFlight { get; init; }

    /// <summary>Held accesses answered by their deadline (no verdict within <c>OnAccessCurlTimeout</c> of the access), by <c>OnAccessDenyOnError</c>.</summary>
    public long Timeouts { get; init; }

    /// <summary>Verdicts that came after their access had been answered by its deadline.</summary>
    public long LateVerdicts { get; init; }

    /// <summary>Scans running now a whole timeout past their deadline (each holds a slot until it returns).</summary>
    public long HungScans { get; init; }

    /// <summary>Accesses that were not held (notification mode, extra scanning) and were dropped unscanned because the queue was full.</summary>
    public long Unscanned { get; init; }

    /// <summary>Directories (each with its subtree) that could not be watched or protected now, and are being retried.</summary>
    public long UnprotectedDirectories { get; init; }

    /// <summary>Directories that could not be watched or protected when first found (each counted once).</summary>
    public long ProtectionFailures { get; init; }

    /// <summary>Times the fanotify group was replaced because it failed (never for new signatures: see <see cref="CacheResets"/>).</summary>
    public long GroupRestarts { get; init; }

    /// <summary>Files whose opens the kernel answers itself now (ignore marks, each held by a read lease).</summary>
    public long KernelCachedFiles { get; init; }

    /// <summary>Files extra scanning could not open or examine.</summary>
    public long ExtraScanFailures { get; init; }

    /// <summary>Closes after writing that were not scanned because a scan of that file after an earlier close still waited.</summary>
    public long ClosesCoalesced { get; init; }

    /// <summary>Actions on detections that did what they were to do (<see cref="IDetectionAction"/>).</summary>
    public long ActionsDone { get; init; }

    /// <summary>Actions on detections that failed, or refused (touching nothing: a path swapped since the scan).</summary>
    public long ActionsFailed { get; init; }

    /// <summary>Detections no action ran on: their queue was full, or the monitor stopped first.</summary>
    public long ActionsDropped { get; init; }

    /// <summary>Opens outside every include path on a filesystem marked whole for one (tree marking 'filesystem'), answered at once, unreported.</summary>
    public long OutsideOpens { get; init; }

    /// <summary>Directories outside the include paths that the kernel was told to ignore (evictable ignore marks put, not all still held).</summary>
    public long IgnoredOutsideDirectories { get; init; }

    /// <summary>
    /// Whether protection is not whole now: directories unprotected (being retried), or scans hung. Everything else
    /// still works; the counters above say what.
    /// </summary>
    public bool Degraded => UnprotectedDirectories > 0 || HungScans > 0;
}
