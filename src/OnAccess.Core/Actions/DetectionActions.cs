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
    /// <summary>Files acted on lately (device, inode, size, times), each for a while: bounded, oldest out first.</summary>
    private sealed class RecentFiles(int capacity, TimeSpan window)
    {
        private readonly Lock _gate = new();
        private readonly Dictionary<VerdictKey, long> _seen = [];
        private readonly Queue<VerdictKey> _order = new();

        /// <summary>False when <paramref name="key"/> was added within the window.</summary>
        public bool TryAdd(in VerdictKey key)
        {
            var now = Environment.TickCount64;
            var stripped = key with { Generation = 0 };
            lock (_gate)
            {
                if (_seen.TryGetValue(stripped, out var at) && now - at < (long)window.TotalMilliseconds)
                {
                    return false;
                }

                if (_seen.Count >= capacity && _order.TryDequeue(out var oldest))
                {
                    _seen.Remove(oldest);
                }

                if (_seen.TryAdd(stripped, now))
                {
                    _order.Enqueue(stripped);
                }
                else
                {
                    _seen[stripped] = now;
                }

                return true;
            }
        }
    }

    private readonly IDetectionAction[] _actions;
    private readonly IOnAccessObserver[] _observers;
    private readonly ILogger _logger;
    private readonly Channel<Detection> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task[] _workers;
    private readonly RecentFiles _recent = new(RecentCapacity, RepeatWindow);
    private long _done, _failed, _dropped;

    /// <summary>How long a file found again unchanged is not acted on again.</summary>
    internal static readonly TimeSpan RepeatWindow = TimeSpan.FromMinutes(1);

    private const int RecentCapacity = 4096;

    public DetectionActions(IReadOnlyList<IDetectionAction> actions, IReadOnlyList<IOnAccessObserver> observers, int capacity, int concurrency, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1, nameof(OnAccessEngineOptions.ActionQueueCapacity));
        ArgumentOutOfRangeException.ThrowIfLessThan(concurrency, 1, nameof(OnAccessEngineOptions.ActionConcurrency));
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
    public void Submit(SafeFileHandle file, byte[]? rawPath, in VerdictKey key, string threat, int processId, uint? userId, AccessKind kind, AccessDecision decision)
    {
        if (!_recent.TryAdd(key)) // found again, unchanged: its actions ran (a VirusEvent that opens %f, a flood of opens)
        {
            return;
        }

        var fd = global::Interop.Libc.Fcntl(file, global::Interop.Libc.F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
        {
            Drop(threat, rawPath, processId, userId, "its descriptor could not be duplicated: " + global::Interop.ErrorInfo.Last().Message);
            return;
        }

        var detection = new Detection(new SafeFileHandle(fd, ownsHandle: true), rawPath, key.Device, key.Inode, key.Size, threat, processId, userId, kind, decision);
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
            try
            {
                await Task.WhenAll(_workers).WaitAsync(bound).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // An action deaf to cancellation: its worker is left behind (the process is stopping), and said so.
                Log.ActionsAbandoned(_logger, _workers.Count(w => !w.IsCompleted));
            }
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
                    string name = "?";
                    DetectionActionResult? result;
                    try
                    {
                        name = action.Name;
                        result = await action.RunAsync(detection, _stopping.Token).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        result = DetectionActionResult.Failed($"{e.GetType().Name}: {e.Message}");
                    }

                    Report(name, detection, result ?? DetectionActionResult.Failed("the action returned no result"));
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

        var dropped = new OnAccessActionEvent("*", rawPath is null ? null : System.Text.Encoding.UTF8.GetString(rawPath), rawPath, threat, processId, userId, DetectionActionOutcome.Dropped, why, null);
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Self.Tell(state.Event), (Self: this, Event: dropped), preferLocal: false); // never on the thread that decided
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
