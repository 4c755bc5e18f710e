namespace OnAccess.Fanotify;

/// <summary>How an ignore mark on one inode behaves.</summary>
[Flags]
public enum FanotifyIgnoreOptions
{
    /// <summary>The kernel clears the ignore mark when the file is modified.</summary>
    None = 0,

    /// <summary>Keep ignoring after the file is modified (<c>FAN_MARK_IGNORED_SURV_MODIFY</c>).</summary>
    SurviveModify = 1,

    /// <summary>Let the kernel evict the mark (and its inode) under memory pressure (<c>FAN_MARK_EVICTABLE</c>, Linux 5.19).</summary>
    Evictable = 2,

    /// <summary>
    /// On a directory: ignore the events of its direct children (<c>FAN_EVENT_ON_CHILD</c> in the ignore mask; needs
    /// <c>FAN_MARK_IGNORE</c>, Linux 6.0), not of the directory itself.
    /// </summary>
    Children = 4,
}
