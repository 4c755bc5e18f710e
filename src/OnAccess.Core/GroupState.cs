using OnAccess.Fanotify;

namespace OnAccess;

/// <summary>One fanotify group and its reader. A new one replaces it when the signatures change or it fails.</summary>
internal sealed class GroupState(FanotifyGroup group, long generation)
{
    /// <summary>Accesses admitted for a scan and not yet released (a replaced group waits for them, bounded).</summary>
    public int Pending;

    public FanotifyGroup Group { get; } = group;

    public long Generation { get; } = generation;

    /// <summary>Replaced: its new events are held by its successor too, so they are allowed at once here.</summary>
    public volatile bool Retired;

    public EventLoop? Loop { get; set; }

    /// <summary>Completes when the group's events are no longer read.</summary>
    public Task Consumer => Loop?.ReadingStopped ?? Task.CompletedTask;
}
