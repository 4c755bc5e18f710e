namespace OnAccess.Fanotify;

/// <summary>How a <see cref="FanotifyGroup"/> is created (<c>fanotify_init</c> flags).</summary>
public sealed class FanotifyGroupOptions
{
    /// <summary>The notification class. The default is <see cref="FanotifyClass.Notification"/>.</summary>
    public FanotifyClass Class { get; set; } = FanotifyClass.Notification;

    /// <summary>Close the group on exec (<c>FAN_CLOEXEC</c>). The default is <see langword="true"/>.</summary>
    public bool CloseOnExec { get; set; } = true;

    /// <summary>Non-blocking reads (<c>FAN_NONBLOCK</c>). The default is <see langword="true"/>; the reader polls.</summary>
    public bool NonBlocking { get; set; } = true;

    /// <summary>
    /// No limit on queued events (<c>FAN_UNLIMITED_QUEUE</c>). The default is <see langword="false"/>: a full queue
    /// overflows and is reported, rather than growing kernel memory without bound.
    /// </summary>
    public bool UnlimitedQueue { get; set; }

    /// <summary>No limit on marks (<c>FAN_UNLIMITED_MARKS</c>). The default is <see langword="false"/>.</summary>
    public bool UnlimitedMarks { get; set; }

    /// <summary>Report a pidfd for the accessing process (<c>FAN_REPORT_PIDFD</c>, Linux 5.15).</summary>
    public bool ReportPidFd { get; set; }

    /// <summary>Report thread ids instead of process ids (<c>FAN_REPORT_TID</c>).</summary>
    public bool ReportThreadId { get; set; }

    /// <summary>Report the directory's file handle and the entry name (<c>FAN_REPORT_DFID_NAME</c>, Linux 5.9); events then carry no descriptor.</summary>
    public bool ReportDirectoryFidAndName { get; set; }

    /// <summary>Let permission responses request an audit record (<c>FAN_ENABLE_AUDIT</c>).</summary>
    public bool EnableAudit { get; set; }

    /// <summary>
    /// The answer written when a permission event is disposed without one. The default is
    /// <see cref="FanotifyResponse.Allow"/>, which is what the kernel does when the group closes.
    /// </summary>
    public FanotifyResponse UnansweredResponse { get; set; } = FanotifyResponse.Allow;

    /// <summary>
    /// The most one read(2) of <see cref="FanotifyGroup.ReadEvents"/> takes, in bytes: at least
    /// <see cref="MinReadBufferSize"/>, at most <see cref="MaxReadBufferSize"/>. Each event read comes with a
    /// descriptor (and, with <see cref="ReportPidFd"/>, a pidfd) that stays open until the caller disposes the event,
    /// so this also bounds how many descriptors one read can add: a 24-byte record per event at least. The default is
    /// 64 KiB.
    /// </summary>
    public int ReadBufferSize { get; set; } = MaxReadBufferSize;

    /// <summary>The smallest <see cref="ReadBufferSize"/>: room for any single record the kernel returns.</summary>
    public const int MinReadBufferSize = 4096;

    /// <summary>The largest <see cref="ReadBufferSize"/>.</summary>
    public const int MaxReadBufferSize = 64 * 1024;
}
