using System.Diagnostics;

namespace OnAccess;

/// <summary>
/// The deadline belongs to the open: every held access waiting for a scan (in a slot, in the queue, on the reading
/// thread) is answered here when its deadline passes, whatever its scanner is doing (returning late, never returning,
/// blocking its thread, waiting on a helper). One thread, one list in arrival order: every deadline is arrival plus
/// the same timeout, so the list is also in deadline order and the thread sleeps until its head is due. An item
/// whose scan is still running a whole timeout after its deadline is reported hung, once.
/// </summary>
internal sealed class DeadlineWatch : IDisposable
{
    private readonly object _gate = new(); // Monitor.Wait/Pulse: the thread sleeps until the next deadline
    private readonly long _timeout;
    private readonly Action<WorkItem> _expired;
    private readonly Action<WorkItem> _hung;
    private readonly Thread _thread;
    private readonly List<WorkItem> _due = [];
    private WorkItem? _waitingHead;
    private WorkItem? _waitingTail;
    private WorkItem? _overdueHead;
    private WorkItem? _overdueTail;
    private int _hungNow;
    private bool _stopping;

    // When the thread will look next: long.MaxValue while it waits for an item, long.MinValue while awake. Every item
    // is due a whole timeout after it arrived, so an item added while the thread waits for an earlier time needs no
    // wake-up: a stream of scans that end in time costs no context switch here (the thread wakes once a timeout).
    private long _wakeAt = long.MinValue;

    /// <param name="timeout">The scan timeout (OnAccessCurlTimeout).</param>
    /// <param name="expired">Called (on the watch's thread) for an item whose deadline passed; it answers by the error policy.</param>
    /// <param name="hung">Called (on the watch's thread) for an item whose scan is still running a timeout after its deadline.</param>
    public DeadlineWatch(TimeSpan timeout, Action<WorkItem> expired, Action<WorkItem> hung)
    {
        _timeout = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        _expired = expired;
        _hung = hung;
        _thread = new Thread(Run) { IsBackground = true, Name = "OnAccess deadlines" };
        _thread.Start();
    }

    internal enum ListKind
    {
        None,
        Waiting,
        Overdue,
    }

    /// <summary>Scans still running a whole timeout after their deadline (each holds a slot).</summary>
    public int HungNow => Volatile.Read(ref _hungNow);

    /// <summary>Watches an item from now until <see cref="Remove"/>: its deadline is its arrival plus the timeout.</summary>
    public void Add(WorkItem item)
    {
        lock (_gate)
        {
            item.Due = item.Arrived + _timeout;
            Append(ref _waitingHead, ref _waitingTail, item, ListKind.Waiting);
            if (item.Due < _wakeAt)
            {
                Monitor.PulseAll(_gate); // the thread sleeps past this deadline (or with nothing to wait for)
            }
        }
    }

    /// <summary>The item's scan is over (or it never ran): stop watching it; a hung one is no longer hung.</summary>
    public void Remove(WorkItem item)
    {
        lock (_gate)
        {
            if (item.List == ListKind.Waiting)
            {
                Unlink(ref _waitingHead, ref _waitingTail, item);
            }
            else if (item.List == ListKind.Overdue)
            {
                if (item.Due == long.MinValue)
                {
                    _hungNow--;
                }

                Unlink(ref _overdueHead, ref _overdueTail, item);
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }

        if (_thread.ManagedThreadId != Environment.CurrentManagedThreadId)
        {
            _thread.Join();
        }
    }

    private void Run()
    {
        var hung = new List<WorkItem>();
        while (true)
        {
            lock (_gate)
            {
                while (true)
                {
                    if (_stopping)
                    {
                        return;
                    }

                    var now = Stopwatch.GetTimestamp();
                    TakeDue(now, hung);
                    if (_due.Count > 0 || hung.Count > 0)
                    {
                        break;
                    }

                    var next = Math.Min(_waitingHead?.Due ?? long.MaxValue, NextOverdue()?.Due ?? long.MaxValue);
                    _wakeAt = next;
                    if (next == long.MaxValue)
                    {
                        Monitor.Wait(_gate);
                    }
                    else
                    {
                        Monitor.Wait(_gate, TimeSpan.FromSeconds(Math.Max(0, next - now) / (double)Stopwatch.Frequency) + TimeSpan.FromMilliseconds(1));
                    }

                    _wakeAt = long.MinValue;
                }
            }

            // Outside the lock: answering writes to the kernel, reporting takes other locks.
            foreach (var item in _due)
            {
                Call(_expired, item);
            }

            foreach (var item in hung)
            {
                Call(_hung, item);
            }

            _due.Clear();
            hung.Clear();
        }
    }

    /// <summary>A failure answering one item must not stop the thread that answers every other one.</summary>
    private static void Call(Action<WorkItem> action, WorkItem item)
    {
        try
        {
            action(item);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The group closed, or the opener is gone: nothing is left to answer.
        }
    }

    /// <summary>Moves what is due out of the lists: waiting items past their deadline, overdue scans past their grace.</summary>
    private void TakeDue(long now, List<WorkItem> hung)
    {
        while (_waitingHead is { } head && head.Due <= now)
        {
            Unlink(ref _waitingHead, ref _waitingTail, head);
            _due.Add(head);
            if (head.Scanning)
            {
                head.Due += _timeout; // reported hung if its scan is still running one more timeout from now
                Append(ref _overdueHead, ref _overdueTail, head, ListKind.Overdue);
            }
        }

        for (var item = NextOverdue(); item is not null && item.Due <= now; item = item.Next)
        {
            item.Due = long.MinValue; // hung: stays listed (counted) until its scan returns
            _hungNow++;
            hung.Add(item);
        }
    }

    /// <summary>The first overdue scan not yet reported hung (those reported stay at the front, in order).</summary>
    private WorkItem? NextOverdue()
    {
        var item = _overdueHead;
        while (item is { Due: long.MinValue })
        {
            item = item.Next;
        }

        return item;
    }

    private static void Append(ref WorkItem? head, ref WorkItem? tail, WorkItem item, ListKind kind)
    {
        item.List = kind;
        item.Previous = tail;
        item.Next = null;
        if (tail is null)
        {
            head = item;
        }
        else
        {
            tail.Next = item;
        }

        tail = item;
    }

    private static void Unlink(ref WorkItem? head, ref WorkItem? tail, WorkItem item)
    {
        if (item.Previous is null)
        {
            head = item.Next;
        }
        else
        {
            item.Previous.Next = item.Next;
        }

        if (item.Next is null)
        {
            tail = item.Previous;
        }
        else
        {
            item.Next.Previous = item.Previous;
        }

        item.Previous = item.Next = null;
        item.List = ListKind.None;
    }
}
