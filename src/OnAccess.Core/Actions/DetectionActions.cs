using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using OnAccess.Text;

namespace OnAccess;

/// <summary>
/// Runs the <see cref="IDetectionAction"/>s on infected files, after their accesses were answered: a bounded queue
/// (a full one drops the detection: counted, logged) and a fixed number of workers, so a flood of detections or a slow
/// action costs a bounded number of descriptors and threads and never delays a decision. Each detection holds a
/// duplicate of the scanned file's descriptor until its last action has run. Shared by every engine a reload makes.
/// </summary>
internal sealed class DetectionActions : IAsyncDisposable
{
    private readonly IDetectionAction[] _actions;
    private readonly IOnAccessObserver[] _observers;
    private readonly ILogger _logger;
    private readonly Channel<Detection> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task[] _workers;
    private long _done, _failed, _dropped;

    public DetectionActions(IReadOnlyList<IDetectionAction> actions, IReadOnlyList<IOnAccessObserver> observers, int capacity, int concurrency, ILogger logger)
    {
        _actions = [.. actions];
        _observers = [.. observers];
        _logger = logger;
        _queue = Channel.CreateBounded<Detection>(new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.Wait, SingleReader = false });
        _workers = [.. Enumerable.Range(0, concurrency).Select(_ => Task.Run(WorkAsync, CancellationToken.None))];
    }

    /// <summary>Actions that did what they were to do.</summary>
    public long Done => Interlocked.Read(ref _done);

    /// <summary>Actions that failed or refused.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Detections no action ran on: the queue was full, or the monitor stopped first.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Queues the actions on an infected file (on the thread that decided it, after the answer): a duplicate of its
    /// descriptor is taken now, while the event's is open. Never waits.
    /// </summary>
    public void Submit(SafeFileHandle file, byte[]? rawPath, ulong device, ulong inode, string threat, int processId, uint? userId, AccessKind kind, AccessDecision decision)
    {
        var fd = global::Interop.Libc.Fcntl(file, global::Interop.Libc.F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
        {
            Drop(threat, rawPath, processId, userId, "its descriptor could not be duplicated: " + global::Interop.ErrorInfo.Last().Message);
            return;
        }

        var detection = new Detection(new SafeFileHandle(fd, ownsHandle: true), rawPath, device, inode, threat, processId, userId, kind, decision);
        if (!_queue.Writer.TryWrite(detection))
        {
            detection.Dispose();
            Drop(threat, rawPath, processId, userId, "the action queue is full");
        }
    }

    /// <summary>Stops taking detections; those queued get <paramref name="bound"/> to be acted on, then the rest are dropped.</summary>
    public async Task StopAsync(TimeSpan bound)
    {
        _queue.Writer.TryComplete();
        try
        {
            await Task.WhenAll(_workers).WaitAsync(bound).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(_workers).WaitAsync(bound).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task WorkAsync()
    {
        await foreach (var detection in _queue.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            using (detection)
            {
                if (_stopping.IsCancellationRequested)
                {
                    Drop(detection.ThreatName, detection.RawPath, detection.ProcessId, detection.UserId, "the monitor stopped first");
                    continue;
                }

                foreach (var action in _actions)
                {
                    DetectionActionResult result;
                    try
                    {
                        result = await action.RunAsync(detection, _stopping.Token).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        result = DetectionActionResult.Failed($"{e.GetType().Name}: {e.Message}");
                    }

                    Report(action.Name, detection, result);
                }
            }
        }
    }

    private void Report(string action, Detection d, DetectionActionResult result)
    {
        var path = DisplayText.Escape(d.RawPath ?? []);
        var detail = DisplayText.Escape(result.Detail)!;
        if (result.Outcome == DetectionActionOutcome.Done)
        {
            Interlocked.Increment(ref _done);
            Log.ActionDone(_logger, action, path, DisplayText.Escape(d.ThreatName)!, detail);
        }
        else
        {
            Interlocked.Increment(ref _failed);
            Log.ActionFailed(_logger, action, result.Outcome, path, DisplayText.Escape(d.ThreatName)!, detail);
        }

        Tell(new OnAccessActionEvent(action, d.Path, d.RawPath, d.ThreatName, d.ProcessId, d.UserId, result.Outcome, result.Detail, result.Id));
    }

    private void Drop(string threat, byte[]? rawPath, int processId, uint? userId, string why)
    {
        var count = Interlocked.Increment(ref _dropped);
        if (long.IsPow2(count))
        {
            Log.ActionsDropped(_logger, DisplayText.Escape(rawPath ?? []), why, count);
        }

        Tell(new OnAccessActionEvent("*", rawPath is null ? null : System.Text.Encoding.UTF8.GetString(rawPath), rawPath, threat, processId, userId, DetectionActionOutcome.Dropped, why, null));
    }

    private void Tell(OnAccessActionEvent e)
    {
        foreach (var observer in _observers)
        {
            try
            {
                observer.OnAction(e);
            }
            catch (Exception ex)
            {
                Log.ObserverFailed(_logger, ex);
            }
        }
    }
}
