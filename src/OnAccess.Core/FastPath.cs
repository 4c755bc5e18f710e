using System.Diagnostics;
using OnAccess.Fanotify;

namespace OnAccess;

/// <summary>
/// What runs on the thread that read an event, in the design's order: kernel notices; own process (allowed at once);
/// the file's identity from its descriptor; on a subtree's filesystem mark, where the file lies (outside the tree, in a
/// directory no user can change: allowed at once, see <see cref="SubtreeScope"/>); the other facts a decision needs (the
/// user, read now through the event's pidfd while the kernel still knows the process; the path when an exclusion needs
/// it, believed only through this namespace's mounts); the plan's skips; a remembered clean verdict; otherwise a scan,
/// admitted to the dispatcher. It never blocks and never runs a scanner, an
/// observer or a log sink (the reporter hands those off).
/// </summary>
internal sealed class FastPath(AccessPolicy policy, CleanVerdicts verdicts, ScanDispatcher dispatcher, DecisionReporter reporter, MountView? mounts = null, SubtreeScope? scope = null)
{
    /// <summary>Files up to this size are scanned on the thread that read them (see <see cref="EventLoop"/>).</summary>
    public const long InlineScanMaxSize = 128 * 1024;

    private readonly int _ownPid = Environment.ProcessId;

    /// <summary>Beyond the time until a clean verdict may be remembered, how long a scan after a close waits.</summary>
    private static readonly TimeSpan CloseSettle = TimeSpan.FromMilliseconds(5);

    /// <summary>The longest a scan after a close waits, whatever the file's change time says (a clock set back).</summary>
    private static readonly TimeSpan CloseSettleMax = TimeSpan.FromSeconds(2.5);

    /// <summary>Told when the group returned records that cannot be parsed: it must be replaced (by the <see cref="GroupRotation"/>).</summary>
    public Action<string>? GroupFailed { get; set; }

    /// <summary>Decides one event: answers it and returns null, or returns the work of a scan that holds a slot.</summary>
    /// <param name="e">The event.</param>
    /// <param name="group">The group it was read from.</param>
    /// <param name="retired">Whether the group was retired before the read that returned the event began: only then is
    /// its successor sure to hold the same open (an event read by a read begun earlier may predate the successor's marks).</param>
    public WorkItem? Decide(FanotifyEvent e, GroupState group, bool retired)
    {
        reporter.EventRead();
        var arrived = Stopwatch.GetTimestamp();
        if (e.IsQueueOverflow || e.ReadError is not null)
        {
            reporter.KernelNotice(e);
            if (e.ReadError == Interop.Errno.EBADMSG)
            {
                GroupFailed?.Invoke("the kernel returned a record that could not be parsed; accesses it held are released by closing the group");
            }

            e.Dispose();
            return null;
        }

        if (e.File is null)
        {
            e.Dispose();
            return null;
        }

        if (e.ProcessId == _ownPid || retired)
        {
            // Our own opens never wait on us; a retired group's new events are held by its successor too.
            WorkItem.Respond(e, FanotifyResponse.Allow);
            e.Dispose();
            return null;
        }

        var kind = KindOf(e.Events);
        FileIdentity identity = default;
        var identified = true;
        try
        {
            identity = e.GetFileIdentity();
        }
        catch (IOException)
        {
            identified = false;
        }

        byte[]? path = null;
        var excluded = false;
        if (identified && scope is not null && scope.Covers(identity.Device))
        {
            // A subtree's filesystem mark holds every open on its filesystem: one outside the tree, in a directory no
            // user can change, is answered at once, unless the file has another name, which may lie inside.
            path = e.GetRawPath();
            var place = scope.Locate(path, identity, out var directory, out var directoryKey);
            if (place == SubtreeScope.Place.Excluded)
            {
                excluded = !(identity.IsRegularFile && identity.LinkCount > 1); // another name may lie in the tree
            }
            else if (place == SubtreeScope.Place.Outside)
            {
                using (directory)
                {
                    if (!(identity.IsRegularFile && identity.LinkCount > 1))
                    {
                        WorkItem.Respond(e, FanotifyResponse.Allow);
                        e.ProcessFd?.Dispose();
                        scope.AfterOutside(group, directory!, directoryKey!);
                        e.Dispose();
                        return null;
                    }
                }
            }
        }

        var userId = policy.UsesUserId || reporter.WantsUser ? e.GetProcessUserId() : null;
        e.ProcessFd?.Dispose(); // read what it was for: a queued access holds one descriptor, not two
        path ??= policy.UsesPath ? e.GetRawPath() : null;
        if (!identified)
        {
            Skip(e, kind, userId, path, DecisionReason.NotRegularFile, arrived);
            return null;
        }

        // A path is where the file lies in the opener's mount namespace: believed for an exclusion only through a mount
        // of this one (never looked up: see MountView).
        var believed = policy.UsesPath && path is not null && mounts is not null && mounts.Believes(identity) ? path : null;
        if (policy.Skip(userId, believed, identity.IsRegularFile, identity.Size, excluded) is { } reason)
        {
            Skip(e, kind, userId, path, reason, arrived);
            return null;
        }

        var key = VerdictKey.From(identity, group.Generation);
        if (verdicts.Hit(key, e.File) is { } lease)
        {
            // The answer first: the kernel cache is filled after it (the lease guards the file meanwhile).
            WorkItem.Respond(e, FanotifyResponse.Allow);
            verdicts.AfterHit(lease, e.IsPermissionRequest ? group : null);
            var cached = new WorkItem(e, e.File, kind, e.ProcessId, userId, identity.Size, path, arrived, null, key);
            reporter.Finish(cached, ScanVerdict.Clean, e.IsPermissionRequest ? AccessDecision.Allow : AccessDecision.None, DecisionReason.Cached, null);
            e.Dispose();
            return null;
        }

        var item = new WorkItem(e, e.File, kind, e.ProcessId, userId, identity.Size, path, arrived, group, key);
        if (kind == AccessKind.CloseWrite)
        {
            if (!dispatcher.TryQueueClose(key))
            {
                e.Dispose(); // a scan of this file after an earlier close waits still: it will read what this close left
                reporter.CloseCoalesced();
                return null;
            }

            // Scanned off this thread, once its change is old enough for a clean verdict to be remembered.
            Interlocked.Increment(ref group.Pending);
            var wait = CleanVerdicts.UntilRememberable(identity) + CloseSettle;
            dispatcher.EnqueueAfter(item, wait < CloseSettleMax ? wait : CloseSettleMax);
            return null;
        }

        Interlocked.Increment(ref group.Pending);
        return dispatcher.Admit(item);
    }

    private void Skip(FanotifyEvent e, AccessKind kind, uint? userId, byte[]? path, DecisionReason reason, long arrived)
    {
        WorkItem.Respond(e, FanotifyResponse.Allow);
        reporter.Finish(new WorkItem(e, e.File!, kind, e.ProcessId, userId, 0, path, arrived, null, default), null, e.IsPermissionRequest ? AccessDecision.Allow : AccessDecision.None, reason, null);
        e.Dispose();
    }

    private static AccessKind KindOf(FanotifyEvents events) =>
        (events & FanotifyEvents.CloseWrite) != 0 && (events & (FanotifyEvents.OpenPermission | FanotifyEvents.OpenExecPermission | FanotifyEvents.AccessPermission)) == 0 ? AccessKind.CloseWrite
        : (events & (FanotifyEvents.OpenExecPermission | FanotifyEvents.OpenExec)) != 0 ? AccessKind.Exec
        : (events & (FanotifyEvents.AccessPermission | FanotifyEvents.Access)) != 0 && (events & (FanotifyEvents.Open | FanotifyEvents.OpenPermission)) == 0 ? AccessKind.Read
        : AccessKind.Open;
}
