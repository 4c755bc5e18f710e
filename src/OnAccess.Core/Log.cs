using Microsoft.Extensions.Logging;

namespace OnAccess;

/// <summary>Log events of OnAccess.Core: ids 1-99. Never written before an answer, never on a kernel reader thread.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "On-access monitoring started: mode {Mode}, prevention {Prevention}, DDD {Ddd}, {Marks} directories marked")]
    public static partial void Started(ILogger logger, string mode, bool prevention, bool ddd, long marks);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "On-access monitoring is disabled by the configuration (ScanOnAccess no)")]
    public static partial void Disabled(ILogger logger);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "On-access monitoring stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "{Code}: {Message}")]
    public static partial void PlanWarning(ILogger logger, string code, string message);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "{Code}: {Message}")]
    public static partial void PlanInfo(ILogger logger, string code, string message);

    /// <summary>The plan's warnings and notes (its errors stop it, and are thrown).</summary>
    public static void Diagnostics(ILogger logger, OnAccess.Config.OnAccessPlan plan)
    {
        foreach (var d in plan.Diagnostics)
        {
            var text = d.ToString();
            if (d.Severity == OnAccess.Config.DiagnosticSeverity.Warning)
            {
                PlanWarning(logger, d.Code, text);
            }
            else if (d.Severity == OnAccess.Config.DiagnosticSeverity.Info)
            {
                PlanInfo(logger, d.Code, text);
            }
        }
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "{Threat} found in {Path} (pid {Pid}, uid {Uid}): {Decision}")]
    public static partial void Infected(ILogger logger, string? threat, string? path, int pid, uint? uid, AccessDecision decision);

    [LoggerMessage(EventId = 11, Level = LogLevel.Debug, Message = "{Decision} {Path} (pid {Pid}): {Reason}, verdict {Verdict}, {LatencyUs} µs")]
    public static partial void Decision(ILogger logger, AccessDecision decision, string? path, int pid, DecisionReason reason, ScanVerdict? verdict, long latencyUs);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "Scan of {Path} failed ({Reason}: {Detail}); {Decision} (OnAccessDenyOnError {DenyOnError})")]
    public static partial void ScanFailed(ILogger logger, string? path, DecisionReason reason, AccessDecision decision, bool denyOnError, string? detail);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "The scan queue is full; an access was answered {Decision} unscanned ({Count} so far)")]
    public static partial void QueueFull(ILogger logger, AccessDecision decision, long count);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "The observer queue is full; {Count} decisions were not delivered to observers")]
    public static partial void ObserverQueueFull(ILogger logger, long count);

    [LoggerMessage(EventId = 15, Level = LogLevel.Error, Message = "An observer threw")]
    public static partial void ObserverFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "The kernel's fanotify queue overflowed: accesses were not seen")]
    public static partial void FanotifyOverflow(ILogger logger);

    [LoggerMessage(EventId = 23, Level = LogLevel.Error, Message = "The fanotify event loop failed; the group is closed so no access stays held")]
    public static partial void EventLoopFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 24, Level = LogLevel.Warning, Message = "User name {Name} (OnAccessExcludeUname) does not exist; it excludes nobody")]
    public static partial void UnknownUser(ILogger logger, string name);

    [LoggerMessage(EventId = 25, Level = LogLevel.Information, Message = "Open-exec permission events are not available on this kernel; exec opens are held as ordinary opens")]
    public static partial void NoExecPermission(ILogger logger);

    [LoggerMessage(EventId = 26, Level = LogLevel.Warning, Message = "The kernel could not deliver an event to OnAccess (errno {Errno}: {Reason}) and denied that access ({Count} so far)")]
    public static partial void KernelDenied(ILogger logger, int errno, string reason, long count);

    [LoggerMessage(EventId = 27, Level = LogLevel.Information, Message = "{Path} is a whole filesystem with nothing excluded below it: one filesystem mark protects it instead of a mark per directory")]
    public static partial void WholeFilesystem(ILogger logger, string path);

    [LoggerMessage(EventId = 28, Level = LogLevel.Warning, Message = "{Path} refused a filesystem mark ({Reason}); its directories are marked one by one")]
    public static partial void WholeFilesystemRefused(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 29, Level = LogLevel.Error, Message = "The scan of {Path} (pid {Pid}) has not returned a whole OnAccessCurlTimeout after its deadline; its access was answered by OnAccessDenyOnError, and the scan keeps its slot until it returns")]
    public static partial void ScanHung(ILogger logger, string path, int pid);

    [LoggerMessage(EventId = 30, Level = LogLevel.Warning, Message = "The fanotify group is replaced ({Reason}); the new one holds every mark before the old one closes")]
    public static partial void GroupRestarted(ILogger logger, string reason);

    [LoggerMessage(EventId = 31, Level = LogLevel.Trace, Message = "A file in the kernel cache was opened for writing: its ignore mark is gone before the writer's open returned")]
    public static partial void LeaseBroken(ILogger logger);

    [LoggerMessage(EventId = 32, Level = LogLevel.Warning, Message = "{Count} scans were still running when the monitor stopped; they were abandoned (the accesses they held were already answered)")]
    public static partial void ScansAbandoned(ILogger logger, long count);

    [LoggerMessage(EventId = 33, Level = LogLevel.Warning, Message = "Extra scanning of {Path} failed: {Reason}")]
    public static partial void ExtraScanFailed(ILogger logger, string path, string reason);

    public static void Reloaded(ILogger logger, IReadOnlyList<OnAccessPlanChange> changes)
    {
        foreach (var change in changes)
        {
            var (before, after) = (OnAccessText.Escape(change.Before) ?? "(none)", OnAccessText.Escape(change.After) ?? "(none)");
            Reloaded(logger, change.Directive, before, after);
        }
    }

    [LoggerMessage(EventId = 34, Level = LogLevel.Information, Message = "Reloaded: {Directive} was {Before}, is {After}; the new marks were in place before the old ones went")]
    public static partial void Reloaded(ILogger logger, string directive, string before, string after);

    [LoggerMessage(EventId = 35, Level = LogLevel.Error, Message = "Reload refused, the running configuration stays: {Reason}")]
    public static partial void ReloadRefused(ILogger logger, string reason);

    [LoggerMessage(EventId = 36, Level = LogLevel.Warning, Message = "A fanotify group being retired still had unread events at its bound (OnAccessCurlTimeout + 1 s); they are allowed when it closes")]
    public static partial void QueuedAtRetirement(ILogger logger);

    [LoggerMessage(EventId = 37, Level = LogLevel.Warning, Message = "Action {Action} on {Path} ({Threat}): {Detail}")]
    public static partial void ActionDone(ILogger logger, string action, string path, string threat, string detail);

    [LoggerMessage(EventId = 38, Level = LogLevel.Error, Message = "Action {Action} on {Path} ({Threat}) {Outcome}: {Detail}")]
    public static partial void ActionFailed(ILogger logger, string action, DetectionActionOutcome outcome, string path, string threat, string detail);

    [LoggerMessage(EventId = 39, Level = LogLevel.Error, Message = "No action ran on {Path}: {Reason} ({Count} detections dropped so far)")]
    public static partial void ActionsDropped(ILogger logger, string path, string reason, long count);

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "{Count} action workers did not end when the monitor stopped (an action deaf to cancellation); they were abandoned")]
    public static partial void ActionsAbandoned(ILogger logger, int count);

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "The include path {Path} could not be placed within its filesystem (its mount is not in /proc/self/mountinfo): every open on that filesystem is scanned")]
    public static partial void SubtreeRootUnplaced(ILogger logger, string path);

    [LoggerMessage(EventId = 42, Level = LogLevel.Information, Message = "{Path} is protected by one mark on the filesystem that holds it (tree marking 'filesystem'): no window for new directories; opens elsewhere on it are answered at once")]
    public static partial void FilesystemSubtree(ILogger logger, string path);
}
