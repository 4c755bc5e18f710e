using System.Diagnostics;
using Microsoft.Extensions.Logging;
using OnAccess.Config;
using OnAccess.Fanotify;
using OnAccess.Inotify;
using OnAccess.Text;

namespace OnAccess;

/// <summary>
/// OnAccessExtraScanning: a file the tracker saw created, moved in or written, opened by it relative to its directory
/// without following a link (never a device, FIFO or socket), is scanned; nothing is held, so the result is reported
/// only. Every failure is counted and logged, and the tracking goes on.
/// </summary>
internal sealed class ExtraScans(OnAccessPlan plan, ScanDispatcher dispatcher, DecisionReporter reporter, ILogger logger)
{
    /// <summary>Takes the file's descriptor: scans it, or closes it when there is nothing to do.</summary>
    public void Submit(TrackedFile file)
    {
        if (!plan.ExtraScanning)
        {
            file.File.Dispose();
            return;
        }

        FileIdentity identity;
        try
        {
            identity = FileIdentity.Of(file.File);
        }
        catch (IOException e)
        {
            reporter.ExtraScanFailed();
            Log.ExtraScanFailed(logger, DisplayText.Escape(file.RawPath), e.Message);
            file.File.Dispose();
            return;
        }

        var kind = file.Kind switch
        {
            DirectoryTreeEventKind.FileMovedIn => AccessKind.MovedIn,
            DirectoryTreeEventKind.FileClosedWrite => AccessKind.CloseWrite,
            _ => AccessKind.Created,
        };
        var item = new WorkItem(null, file.File, kind, 0, null, identity.Size, file.RawPath, Stopwatch.GetTimestamp(), null, default);
        if (plan.MaxFileSize is { } max && identity.Size > max)
        {
            item.TryDecide();
            reporter.Finish(item, null, AccessDecision.None, DecisionReason.TooLarge, null);
            file.File.Dispose();
            return;
        }

        dispatcher.Enqueue(item);
    }
}
