using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using OnAccess.Fanotify;
using OnAccess.Kernel;

namespace OnAccess;

/// <summary>
/// Clean verdicts remembered, and never for content that may have changed since the scan that found it clean. Two
/// caches, one rule: a verdict is trusted only while nobody can have written the file unseen.
/// </summary>
/// <remarks>
/// <para>
/// <b>During the scan.</b> A read lease is taken on the event's file before it is scanned (<see cref="BeginScan"/>).
/// The kernel refuses it while anyone has the file open for writing (a shared writable mapping included), and breaks
/// it when anyone opens the file for writing or truncates it. A verdict is remembered only if the lease was taken and
/// is unbroken after the scan, and the file's key (size, mtime, ctime) is unchanged: no write can have happened from
/// the start of the scan on, whatever the timestamps' granularity.
/// </para>
/// <para>
/// <b>The kernel cache</b> (an ignore mark: the file's next opens never reach user space) is kept only while that lease
/// is held. Writes through a mapping raise no FAN_MODIFY and so never clear an ignore mark, but every writer must open
/// the file for writing first, which breaks the lease: the lease's thread removes the ignore mark before the writer's
/// open returns. A lease holds a descriptor, so the kernel cache holds at most <c>KernelCacheCapacity</c> files
/// (oldest first out), bounded by the process's descriptor limit.
/// </para>
/// <para>
/// <b>The user-space cache</b> (keys) needs no lease held: a hit also requires that nobody has the file open for
/// writing now (a lease taken and given back), and a key is only remembered for a file whose ctime is older than
/// <see cref="ChangeTimeMargin"/>, so any later write (which sets ctime to the coarse clock's now) changes the key.
/// A store through a page already written in an existing mapping changes no time, but that mapping is a writer
/// that is still there, which the hit's lease test sees.
/// </para>
/// </remarks>
internal sealed class CleanVerdicts : IDisposable
{
    /// <summary>A file changed less than this long ago is not put in the user-space cache (coarse timestamps).</summary>
    public static readonly TimeSpan ChangeTimeMargin = TimeSpan.FromMilliseconds(50);

    /// <summary>The coarsest timestamp granularity of a local filesystem Linux writes (FAT's).</summary>
    private static readonly TimeSpan CoarseTick = TimeSpan.FromSeconds(2);

    private readonly VerdictCache? _keys;
    private readonly FileLeaseWatcher? _leases;
    private readonly int _kernelCapacity;
    private readonly FanotifyEvents _ignoreMask;
    private readonly FanotifyIgnoreOptions _ignoreOptions;
    private readonly ILogger _logger;
    private readonly LinkedList<KernelEntry> _kernel = new();
    private readonly Lock _gate = new();
    private long _leaseBreaks;

    public CleanVerdicts(int userCapacity, int kernelCapacity, FanotifyEvents ignoreMask, ILogger logger)
    {
        _keys = userCapacity > 0 ? new VerdictCache(userCapacity) : null;
        _kernelCapacity = Math.Max(0, Math.Min(kernelCapacity, DescriptorBudget()));
        _ignoreMask = ignoreMask;
        _ignoreOptions = FanotifyCapabilities.Current.EvictableMarks ? FanotifyIgnoreOptions.Evictable : FanotifyIgnoreOptions.None;
        _logger = logger;
        _leases = _keys is not null || _kernelCapacity > 0 ? new FileLeaseWatcher(OnBroken) : null;
    }

    /// <summary>Files whose next opens the kernel answers itself (each holds a lease and a descriptor).</summary>
    public int KernelCached
    {
        get
        {
            lock (_gate)
            {
                return _kernel.Count;
            }
        }
    }

    /// <summary>Runs while a file goes into the kernel cache, once its ignore mark is put (a test seam).</summary>
    internal Action? AfterKernelMark { get; set; }

    /// <summary>Leases broken by a writer (each dropped a cached verdict or kept one from being made).</summary>
    public long LeaseBreaks => Interlocked.Read(ref _leaseBreaks);

    /// <summary>The most files the kernel cache holds here (the engine's setting, bounded by the descriptor limit).</summary>
    public int KernelCapacity => _kernelCapacity;

    /// <summary>
    /// Takes the lease that will prove the file unchanged during its scan; null when it cannot be cached: a writer has it
    /// open, or it lies on a filesystem where it can change without a write through this kernel (FUSE, NFS, SMB, ...).
    /// </summary>
    public FileLease? BeginScan(SafeFileHandle file) => _leases is null || ChangedElsewhere.Is(file) ? null : _leases.TryTake(file, out _);

    /// <summary>
    /// A user-space hit: the key matches a remembered clean verdict and nobody has the file open for writing now (the
    /// lease that proves it is returned; give it to <see cref="AfterHit"/> once the access is answered).
    /// </summary>
    public FileLease? Hit(in VerdictKey key, SafeFileHandle file) =>
        _keys is not null && _keys.Contains(key) ? _leases!.TryTake(file, out _) : null;

    /// <summary>After a hit was answered: the file goes into the kernel cache while there is room (a held access), or its lease back.</summary>
    public void AfterHit(FileLease lease, GroupState? group)
    {
        if (group is not null)
        {
            Admit(lease, group);
        }
        else
        {
            _leases!.Release(lease);
        }
    }

    /// <summary>A user-space hit (<see cref="Hit"/> and <see cref="AfterHit"/> at once).</summary>
    public bool IsClean(in VerdictKey key, SafeFileHandle file, GroupState? group)
    {
        if (Hit(key, file) is not { } lease)
        {
            return false;
        }

        AfterHit(lease, group);
        return true;
    }

    /// <summary>After a clean verdict: remembers it when the lease proves the file unchanged since the scan began.</summary>
    /// <param name="lease">The lease from <see cref="BeginScan"/>; this call owns it.</param>
    /// <param name="key">The file's key when the scan began.</param>
    /// <param name="file">The scanned file.</param>
    /// <param name="group">The group that held the access (for the kernel cache), or null (not held, or retired).</param>
    public void Remember(FileLease lease, in VerdictKey key, SafeFileHandle file, GroupState? group)
    {
        FileIdentity now;
        try
        {
            now = FileIdentity.Of(file);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            _leases!.Release(lease);
            return;
        }

        if (lease.IsBroken || VerdictKey.From(now, key.Generation) != key)
        {
            _leases!.Release(lease);
            return;
        }

        if (_keys is not null && UntilRememberable(now) < TimeSpan.Zero)
        {
            _keys.Add(key);
        }

        if (group is not null)
        {
            Admit(lease, group);
        }
        else
        {
            _leases!.Release(lease);
        }
    }

    /// <summary>Gives back a lease whose verdict is not remembered.</summary>
    public void Release(FileLease? lease)
    {
        if (lease is not null)
        {
            _leases!.Release(lease);
        }
    }

    /// <summary>Forgets every verdict (the signatures changed): the leases go, and with them the kernel cache.</summary>
    public void Clear()
    {
        _keys?.Clear();
        List<KernelEntry> all;
        lock (_gate)
        {
            all = [.. _kernel];
            _kernel.Clear();
        }

        foreach (var entry in all)
        {
            Drop(entry);
        }
    }

    public void Dispose()
    {
        Clear();
        _leases?.Dispose();
    }

    /// <summary>Puts a file into the kernel cache: an ignore mark, kept only while its lease is held.</summary>
    private void Admit(FileLease lease, GroupState group)
    {
        if (_kernelCapacity == 0 || _ignoreMask == 0 || group.Retired)
        {
            // No kernel cache, a group that holds no open to ignore (notification only), or a replaced group.
            _leases!.Release(lease);
            return;
        }

        var entry = new KernelEntry(lease, group);
        KernelEntry? evicted = null;
        lock (lease)
        {
            if (lease.IsBroken)
            {
                _leases!.Release(lease);
                return;
            }

            try
            {
                group.Group.AddIgnoreMark(lease.Descriptor, _ignoreMask, _ignoreOptions);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException or NotSupportedException)
            {
                _leases!.Release(lease); // a refused mark (the mark limit) only costs a lookup
                return;
            }

            AfterKernelMark?.Invoke();
            entry.Marked = true;

            // Listed before the lease's thread can see it (it reads the state under this lock), so a break that comes
            // now removes it from the list as well as its mark.
            lock (_gate)
            {
                entry.Node = _kernel.AddLast(entry);
                if (_kernel.Count > _kernelCapacity)
                {
                    evicted = _kernel.First!.Value;
                    _kernel.RemoveFirst();
                    evicted.Node = null;
                }
            }

            lease.State = entry;
        }

        if (evicted is not null)
        {
            Drop(evicted);
        }
    }

    /// <summary>Takes a file out of the kernel cache: the ignore mark first, then the lease.</summary>
    private void Drop(KernelEntry entry)
    {
        Unmark(entry);
        _leases!.Release(entry.Lease);
    }

    private void Unmark(KernelEntry entry)
    {
        lock (entry.Lease)
        {
            if (!entry.Marked)
            {
                return;
            }

            entry.Marked = false;
            try
            {
                entry.Group.Group.RemoveIgnoreMark(entry.Lease.Descriptor, _ignoreMask, _ignoreOptions);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                // The group is closed (its marks went with it) or the descriptor is: nothing is left to ignore.
            }
        }
    }

    /// <summary>
    /// On the lease thread, before the writer's open returns: whatever the lease guarded is undone. A lease of a scan
    /// still running is only marked broken, so its verdict is not remembered.
    /// </summary>
    private void OnBroken(FileLease lease)
    {
        Interlocked.Increment(ref _leaseBreaks);
        KernelEntry? entry;
        lock (lease)
        {
            // Under the lease's lock, as Admit checks the break and puts the mark: either Admit sees the lease broken and
            // puts nothing, or its mark is in place and recorded here, and goes before the lease is let go. (Read
            // without the lock, a break during the mark's system call saw nothing cached yet, the lease was let go,
            // and the mark stayed, guarded by nothing.)
            entry = lease.State as KernelEntry;
        }

        if (entry is null)
        {
            return;
        }

        Unmark(entry);
        lock (_gate)
        {
            if (entry.Node is not null)
            {
                _kernel.Remove(entry.Node);
                entry.Node = null;
            }
        }

        if (_logger.IsEnabled(LogLevel.Trace))
        {
            Log.LeaseBroken(_logger);
        }
    }

    /// <summary>
    /// How old a change must be for the key to be remembered (the remainder is returned): any later write must set a
    /// ctime the key does not have.
    /// Timestamps with no fraction of a second come from a filesystem that keeps whole seconds (ext2/3/4 with 128-byte
    /// inodes) or two (FAT): a rewrite within that tick keeps the key, so such a file waits out two seconds and the
    /// margin. (A fine-grained timestamp falls on a whole second once in a billion: that file waits too, which is safe.)
    /// </summary>
    /// <returns>How long until a file of this identity may be remembered in user space (negative: it may now).</returns>
    public static TimeSpan UntilRememberable(in FileIdentity identity)
    {
        var margin = identity.ChangedTimeNs % 1_000_000_000 == 0 && identity.ModifiedTimeNs % 1_000_000_000 == 0 ? CoarseTick + ChangeTimeMargin : ChangeTimeMargin;
        var changedAgo = TimeSpan.FromTicks(((DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000) - identity.ChangedTimeNs) / 100);
        return margin - changedAgo;
    }

    /// <summary>A quarter of the descriptors this process may open: the rest stay for events, scans and the tree.</summary>
    private static int DescriptorBudget() => (int)Math.Min(int.MaxValue, Interop.Libc.GetOpenFileLimit() / 4);

    private sealed class KernelEntry(FileLease lease, GroupState group)
    {
        public FileLease Lease { get; } = lease;

        public GroupState Group { get; } = group;

        public bool Marked { get; set; }

        public LinkedListNode<KernelEntry>? Node { get; set; }
    }
}
