using System.Collections.Concurrent;
using OnAccess.Config;
using OnAccess.Tests;

namespace OnAccess.Core.Tests;

/// <summary>A monitor on a temp tree, with every decision collected.</summary>
internal sealed class MonitorHarness : IAsyncDisposable, IOnAccessObserver
{
    private readonly ConcurrentQueue<OnAccessEvent> _events = new();
    private readonly SemaphoreSlim _arrived = new(0);

    private readonly ConcurrentQueue<OnAccessActionEvent> _actions = new();
    private int _deliveredCalls;
    private int _eventsAtLastDeliveredCall;

    public MonitorHarness(KernelTestSupport.TempTree tree, OnAccessOptions options, IScanner scanner, OnAccessEngineOptions? engine = null, IEnumerable<IDetectionAction>? actions = null)
    {
        Tree = tree;
        Scanner = scanner;
        Monitor = new OnAccessMonitor(options, scanner, engine, [this], actions: actions);
    }

    /// <summary>Every action's outcome so far.</summary>
    public IReadOnlyList<OnAccessActionEvent> Actions => [.. _actions];

    public KernelTestSupport.TempTree Tree { get; }

    public IScanner Scanner { get; }

    public OnAccessMonitor Monitor { get; }

    public IReadOnlyList<OnAccessEvent> Events => [.. _events];

    public static async Task<MonitorHarness> StartAsync(KernelTestSupport.TempTree tree, OnAccessOptions options, IScanner scanner, OnAccessEngineOptions? engine = null, IEnumerable<IDetectionAction>? actions = null)
    {
        var harness = new MonitorHarness(tree, options, scanner, engine, actions);
        try
        {
            await harness.Monitor.StartAsync(CancellationToken.None);
        }
        catch
        {
            await harness.Monitor.DisposeAsync(); // the tree stays: it is the caller's until a harness starts
            harness._arrived.Dispose();
            throw;
        }

        return harness;
    }

    public void OnEvent(OnAccessEvent accessEvent)
    {
        _events.Enqueue(accessEvent);
        _arrived.Release();
    }

    /// <summary>How often the monitor said every waiting decision had been delivered.</summary>
    public int DeliveredCalls => Volatile.Read(ref _deliveredCalls);

    /// <summary>How many decisions had arrived when it last said so.</summary>
    public int EventsAtLastDeliveredCall => Volatile.Read(ref _eventsAtLastDeliveredCall);

    public void OnEventsDelivered()
    {
        Volatile.Write(ref _eventsAtLastDeliveredCall, _events.Count);
        Interlocked.Increment(ref _deliveredCalls);
    }

    public async Task<OnAccessEvent> WaitForAsync(Func<OnAccessEvent, bool> match)
    {
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        while (true)
        {
            if (_events.FirstOrDefault(match) is { } found)
            {
                return found;
            }

            try
            {
                await _arrived.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"No matching decision; seen: {string.Join("; ", _events.TakeLast(20).Select(e => $"{e.Decision} {e.Reason} {e.Verdict} {e.Path} uid {e.UserId}"))}");
            }
        }
    }

    public Task<OnAccessEvent> WaitForPathAsync(string path) => WaitForAsync(e => e.Path == path);

    public void OnAction(OnAccessActionEvent actionEvent)
    {
        _actions.Enqueue(actionEvent);
        _arrived.Release();
    }

    /// <summary>Waits until <paramref name="count"/> action outcomes match.</summary>
    public async Task<IReadOnlyList<OnAccessActionEvent>> WaitForActionsAsync(Func<OnAccessActionEvent, bool> match, int count = 1)
    {
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        while (true)
        {
            var found = _actions.Where(match).ToList();
            if (found.Count >= count)
            {
                return found;
            }

            try
            {
                await _arrived.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{found.Count} of {count} matching actions; seen: {string.Join("; ", _actions.TakeLast(20).Select(a => $"{a.Action} {a.Outcome} {a.Path}: {a.Detail}"))}");
            }
        }
    }

    /// <summary>Waits until the monitor marks more directories than <paramref name="count"/> (marks are placed as the tracker reports directories).</summary>
    public async Task WaitForMarksAsync(long count)
    {
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        while (Monitor.GetStatistics().MarkedDirectories < count)
        {
            await Task.Delay(10, cts.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Monitor.DisposeAsync();
        Tree.Dispose();
        _arrived.Dispose();
    }
}

internal static class Child
{
    public static Task<KernelTestSupport.ChildResult> CatAsync(string path) => KernelTestSupport.RunAsync("/bin/cat", path);

    public static Task<KernelTestSupport.ChildResult> CatAsUserAsync(uint uid, string path) =>
        KernelTestSupport.RunAsync("/usr/bin/setpriv", $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "/bin/cat", path);

    /// <summary>
    /// A shell running as <paramref name="uid"/> reads the first line of <paramref name="path"/> itself, prints it, and
    /// stays until <paramref name="whileAlive"/> (given its PID) has finished: a notification does not hold the
    /// reader, and a test that checks the user of its access must see the decision while the process exists.
    /// </summary>
    /// <returns>The line the shell read.</returns>
    public static async Task<string?> ReadWhileAliveAsync(uint uid, string path, Func<int, Task> whileAlive)
    {
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/setpriv") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "/bin/sh", "-c", $"read -r line < '{path}'; echo \"$line\"; read -r done" })
        {
            start.ArgumentList.Add(a);
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        try
        {
            var line = await process.StandardOutput.ReadLineAsync(cts.Token);
            await whileAlive(process.Id);
            return line;
        }
        finally
        {
            process.StandardInput.Close(); // its last read ends: it exits
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
            }
        }
    }

    public static Task<KernelTestSupport.ChildResult> ShAsync(string script) => KernelTestSupport.RunAsync("/bin/sh", "-c", script);

    public static bool WasDenied(KernelTestSupport.ChildResult r) => r.ExitCode != 0 && r.StdErr.Contains("Operation not permitted", StringComparison.Ordinal);
}
