namespace OnAccess;

/// <summary>How the engine runs, beyond what clamd.conf says.</summary>
public sealed class OnAccessEngineOptions
{
    /// <summary>
    /// How many held events may wait for a scanner (each holds a descriptor). When full, an event is answered at once
    /// with <see cref="QueueFullDecision"/> and counted. The default is 1,024.
    /// </summary>
    public int QueueCapacity { get; set; } = 1024;

    /// <summary>
    /// The answer when the queue is full: <see langword="null"/> (the default) follows <c>OnAccessDenyOnError</c>.
    /// </summary>
    public AccessDecision? QueueFullDecision { get; set; }

    /// <summary>
    /// Ask the kernel about every read too (<c>FAN_ACCESS_PERM</c>, clamonacc's default). Off by default: reads after
    /// an allowed open cost nothing.
    /// </summary>
    public bool AccessPermission { get; set; }

    /// <summary>Hold opens for execution separately (<c>FAN_OPEN_EXEC_PERM</c>, where the kernel has it). The default is <see langword="true"/>.</summary>
    public bool ExecPermission { get; set; } = true;

    /// <summary>
    /// How many clean verdicts the user-space cache keeps (keyed by device, inode, size, mtime, ctime and the
    /// scanner's signature generation). 0 turns it off. The default is 65,536.
    /// </summary>
    public int CacheCapacity { get; set; } = 65_536;

    /// <summary>
    /// After a clean verdict on a held open, put a kernel ignore mark on the file, so its next opens never reach user
    /// space. Each such file holds a read lease (and a descriptor) that the kernel breaks when anyone opens the file
    /// for writing, which takes the mark away before that open returns. The default is <see langword="true"/>.
    /// </summary>
    public bool KernelCache { get; set; } = true;

    /// <summary>
    /// How many files the kernel cache holds at most (oldest out first); it never takes more than a quarter of the
    /// process's descriptor limit (RLIMIT_NOFILE). The default is 4,096.
    /// </summary>
    public int KernelCacheCapacity { get; set; } = 4096;

    /// <summary>How many decisions may wait for observers before new ones are dropped (and counted). The default is 10,000.</summary>
    public int ObserverQueueCapacity { get; set; } = 10_000;

    /// <summary>
    /// Whether a file closed after writing is scanned after the close (a notification event: nothing is held), as the
    /// guide says fanotify scans "on any files opened, accessed, or closed": content written after an open was allowed
    /// is looked at when its writer is done, and a clean result is remembered, so the next open is a cache hit. Closes
    /// of one file in a burst are coalesced (at most one scan of a file waits at a time). The default is true.
    /// </summary>
    public bool CloseScanning { get; set; } = true;

    /// <summary>
    /// How many detections may wait for their actions (<see cref="IDetectionAction"/>); each holds a descriptor of its
    /// file. Beyond it a detection is dropped (no action runs on it: counted, logged). The default is 256.
    /// </summary>
    public int ActionQueueCapacity { get; set; } = 256;

    /// <summary>How many detections are acted on at once. The default is 2.</summary>
    public int ActionConcurrency { get; set; } = 2;
}
