using System.Collections.Concurrent;

namespace OnAccess;

/// <summary>
/// Decisions on their way to observers and logs: a bounded queue drained, in order, by a thread of its own that looks
/// every <see cref="TickMilliseconds"/> ms while decisions come and sleeps after <see cref="IdleMilliseconds"/> ms
/// without one. Adding never wakes anyone, except the one add that finds the drainer asleep: a wake-up per decision is
/// a context switch the next open may wait behind, and an awaited channel would hand every decision to a thread-pool
/// worker, which spins (sched_yield, about 27 times per decision measured) before it sleeps. After each run it says
/// so, so what is delivered can be written once per run, not once per decision.
/// </summary>
/// <typeparam name="T">What is delivered.</typeparam>
internal sealed class ObserverQueue<T>
    where T : class
{
    /// <summary>How often the drainer looks while decisions come: the most a decision waits to be delivered.</summary>
    internal const int TickMilliseconds = 2;

    /// <summary>How long without a decision before the drainer sleeps until the next one.</summary>
    internal const int IdleMilliseconds = 200;

    private readonly ConcurrentQueue<T> _items = new();
    private readonly int _capacity;
    private readonly Action<T> _deliver;
    private readonly Action? _delivered;
    private readonly object _gate = new(); // Monitor.Wait/Pulse: the drainer sleeps here when idle
    private readonly Thread _thread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _count;
    private int _asleep;
    private volatile bool _stopping;
    private volatile bool _started;

    /// <param name="capacity">How many may wait; more are refused (<see cref="TryAdd"/> returns false).</param>
    /// <param name="deliver">Called on the drainer's thread, in order; it must not throw.</param>
    /// <param name="threadName">The drainer's name.</param>
    /// <param name="delivered">Called on the drainer's thread after each run of deliveries, once nothing waits (and after
    /// the last run at stop): where what <paramref name="deliver"/> buffered is written. It must not throw.</param>
    public ObserverQueue(int capacity, Action<T> deliver, string threadName, Action? delivered = null)
    {
        _capacity = capacity;
        _deliver = deliver;
        _delivered = delivered;
        _thread = new Thread(Run) { IsBackground = true, Name = threadName };
    }

    public void Start()
    {
        _started = true;
        _thread.Start();
    }

    /// <summary>Queues <paramref name="item"/>; false when <c>capacity</c> items already wait.</summary>
    public bool TryAdd(T item)
    {
        if (Interlocked.Increment(ref _count) > _capacity)
        {
            Interlocked.Decrement(ref _count);
            return false;
        }

        _items.Enqueue(item); // a full fence: the drainer going to sleep sees the item, or this sees it asleep
        if (Volatile.Read(ref _asleep) != 0)
        {
            Wake();
        }

        return true;
    }

    /// <summary>Delivers everything queued, then ends the drainer; completes when it has ended (at once if it never started).</summary>
    public Task StopAsync()
    {
        _stopping = true;
        if (!_started)
        {
            _stopped.TrySetResult();
        }

        Wake();
        return _stopped.Task;
    }

    private void Wake()
    {
        lock (_gate)
        {
            Monitor.Pulse(_gate);
        }
    }

    private void Run()
    {
        try
        {
            var idle = 0;
            while (true)
            {
                var delivered = false;
                while (_items.TryDequeue(out var item))
                {
                    Interlocked.Decrement(ref _count);
                    _deliver(item);
                    delivered = true;
                }

                if (delivered)
                {
                    _delivered?.Invoke();
                }

                if (_stopping)
                {
                    if (_items.IsEmpty)
                    {
                        return;
                    }

                    continue;
                }

                idle = delivered ? 0 : idle + TickMilliseconds;
                if (idle < IdleMilliseconds)
                {
                    Thread.Sleep(TickMilliseconds);
                    continue;
                }

                lock (_gate)
                {
                    Interlocked.Exchange(ref _asleep, 1); // a full fence before the look at the queue
                    while (_items.IsEmpty && !_stopping)
                    {
                        Monitor.Wait(_gate);
                    }

                    Volatile.Write(ref _asleep, 0);
                }

                idle = 0;
            }
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }
}
