using System.Threading.Channels;
using OnAccess.Tests;

namespace OnAccess.Fanotify.Tests;

/// <summary>
/// Enumerates a reader in the background. Events of this test process are answered Allow and dropped at once (the
/// test itself must never wait on its own opens); the rest wait in a channel for the test.
/// </summary>
internal sealed class EventCollector : IAsyncDisposable
{
    private readonly Channel<FanotifyEvent> _events = Channel.CreateUnbounded<FanotifyEvent>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _skipped = new();

    public EventCollector(FanotifyEventReader reader)
    {
        Reader = reader;
        _loop = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in reader.ReadAllAsync(_stop.Token))
                {
                    if (e.ProcessId == Environment.ProcessId)
                    {
                        _skipped.Enqueue($"own: {e.Events} {e.GetPath()}");
                        e.Respond(FanotifyResponse.Allow);
                        e.Dispose();
                        continue;
                    }

                    _events.Writer.TryWrite(e);
                }
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                _events.Writer.TryComplete();
            }
        });
    }

    public FanotifyEventReader Reader { get; }

    /// <summary>The next event that matches; others are disposed (which answers them Allow).</summary>
    public async Task<FanotifyEvent> NextAsync(Func<FanotifyEvent, bool> match, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? KernelTestSupport.Timeout);
        while (true)
        {
            FanotifyEvent e;
            try
            {
                e = await _events.Reader.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"No matching event within the timeout; {_skipped.Count} skipped, the last: [{string.Join("; ", _skipped.TakeLast(10))}]");
            }

            if (match(e))
            {
                return e;
            }

            _skipped.Enqueue($"{e.Events} pid {e.ProcessId} {e.GetPath()}");
            e.Dispose();
        }
    }

    public async Task<FanotifyEvent> NextForPathAsync(string path) =>
        await NextAsync(e => e.GetPath() == path);

    /// <summary>
    /// Waits until every one of <paramref name="wanted"/> has been seen for <paramref name="path"/> from
    /// <paramref name="pid"/>; the kernel merges notification events of one object and process that are still queued.
    /// </summary>
    public async Task<FanotifyEvents> WaitForAllAsync(string path, int pid, FanotifyEvents wanted)
    {
        var seen = FanotifyEvents.None;
        while ((seen & wanted) != wanted)
        {
            using var e = await NextAsync(e => e.ProcessId == pid && e.GetPath() == path);
            seen |= e.Events;
        }

        return seen;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Reader.DisposeAsync();
        try
        {
            await _loop.WaitAsync(KernelTestSupport.Timeout);
        }
        catch (OperationCanceledException)
        {
        }

        while (_events.Reader.TryRead(out var e))
        {
            e.Dispose();
        }

        _stop.Dispose();
    }
}
