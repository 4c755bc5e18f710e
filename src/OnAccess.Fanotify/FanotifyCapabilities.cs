using static Interop.FanotifyConstants;

namespace OnAccess.Fanotify;

/// <summary>
/// What this kernel's fanotify can do, probed by trying each feature on a private temporary directory (never on a
/// system mount), and the <c>fs.fanotify.*</c> limits.
/// </summary>
public sealed record FanotifyCapabilities
{
    private static readonly Lazy<FanotifyCapabilities> Cached = new(() => Probe());

    /// <summary>Whether fanotify_init works at all for this process (CAP_SYS_ADMIN).</summary>
    public bool Available { get; init; }

    /// <summary>Why fanotify is unavailable, when it is.</summary>
    public string? UnavailableReason { get; init; }

    /// <summary>Permission events (<c>CONFIG_FANOTIFY_ACCESS_PERMISSIONS</c>).</summary>
    public bool PermissionEvents { get; init; }

    /// <summary><c>FAN_OPEN_EXEC_PERM</c> (Linux 5.0).</summary>
    public bool OpenExecPermission { get; init; }

    /// <summary>Filesystem marks (Linux 4.20).</summary>
    public bool FilesystemMarks { get; init; }

    /// <summary>Evictable marks (Linux 5.19).</summary>
    public bool EvictableMarks { get; init; }

    /// <summary><c>FAN_MARK_IGNORE</c> (Linux 6.0).</summary>
    public bool IgnoreMark { get; init; }

    /// <summary><c>FAN_REPORT_PIDFD</c> (Linux 5.15).</summary>
    public bool PidFd { get; init; }

    /// <summary><c>FAN_REPORT_DFID_NAME</c> (Linux 5.9).</summary>
    public bool DirectoryFidAndName { get; init; }

    /// <summary><c>fs.fanotify.max_queued_events</c>, or -1 if unreadable.</summary>
    public long MaxQueuedEvents { get; init; }

    /// <summary><c>fs.fanotify.max_user_groups</c>, or -1 if unreadable.</summary>
    public long MaxUserGroups { get; init; }

    /// <summary><c>fs.fanotify.max_user_marks</c>, or -1 if unreadable.</summary>
    public long MaxUserMarks { get; init; }

    /// <summary>The probe result for this process, computed once.</summary>
    public static FanotifyCapabilities Current => Cached.Value;

    /// <summary>Probes the kernel now.</summary>
    /// <returns>What works.</returns>
    public static FanotifyCapabilities Probe()
    {
        var limits = new FanotifyCapabilities
        {
            MaxQueuedEvents = Limit("max_queued_events"),
            MaxUserGroups = Limit("max_user_groups"),
            MaxUserMarks = Limit("max_user_marks"),
        };

        var fd = Interop.Fanotify.Init(FAN_CLOEXEC | FAN_CLASS_NOTIF, 0);
        if (fd < 0)
        {
            return limits with { UnavailableReason = $"fanotify_init failed: {Interop.ErrorInfo.Last()}" };
        }

        new SafeFanotifyHandle(fd).Dispose();
        var directory = Directory.CreateTempSubdirectory("onaccess-probe-");
        try
        {
            var file = Path.Combine(directory.FullName, "probe");
            File.WriteAllBytes(file, []);
            return limits with
            {
                Available = true,
                PermissionEvents = TryMark(FAN_CLASS_CONTENT, FAN_MARK_ADD, 0x00010000, directory.FullName),
                OpenExecPermission = TryMark(FAN_CLASS_CONTENT, FAN_MARK_ADD, 0x00040000, directory.FullName),
                FilesystemMarks = TryMark(FAN_CLASS_NOTIF, FAN_MARK_FLUSH | FAN_MARK_FILESYSTEM, 0, null),
                EvictableMarks = TryMark(FAN_CLASS_NOTIF, FAN_MARK_ADD | FAN_MARK_EVICTABLE | FAN_MARK_IGNORED_MASK, 0x00000020, file),
                IgnoreMark = TryMark(FAN_CLASS_NOTIF, FAN_MARK_ADD | FAN_MARK_IGNORE, 0x00000020, file),
                PidFd = TryInit(FAN_CLASS_NOTIF | FAN_REPORT_PIDFD),
                DirectoryFidAndName = TryInit(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME),
            };
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static bool TryInit(uint flags)
    {
        var fd = Interop.Fanotify.Init(FAN_CLOEXEC | flags, 0);
        if (fd < 0)
        {
            return false;
        }

        new SafeFanotifyHandle(fd).Dispose();
        return true;
    }

    private static bool TryMark(uint initFlags, uint markFlags, ulong mask, string? path)
    {
        var fd = Interop.Fanotify.Init(FAN_CLOEXEC | initFlags, 0);
        if (fd < 0)
        {
            return false;
        }

        using var handle = new SafeFanotifyHandle(fd);
        return Interop.Fanotify.Mark(handle, markFlags, mask, Interop.Fanotify.AT_FDCWD, path) == 0;
    }

    private static long Limit(string name) =>
        long.TryParse(Interop.ReadSysctl("/proc/sys/fs/fanotify/" + name), out var value) ? value : -1;
}
