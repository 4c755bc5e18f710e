using System.Runtime.InteropServices;

namespace OnAccess.Kernel;

/// <summary>A read lease on one file (a descriptor of its own), held until released or broken.</summary>
internal sealed class FileLease
{
    internal FileLease(SafeDescriptorHandle descriptor) => Descriptor = descriptor;

    /// <summary>The descriptor the lease is on (a duplicate of the caller's, so the caller may close its own).</summary>
    public SafeDescriptorHandle Descriptor { get; }

    /// <summary>Set once someone opened the file for writing or truncated it (before the lease was let go).</summary>
    public bool IsBroken => Volatile.Read(ref BrokenFlag) != 0;

    /// <summary>Whatever the owner keeps with the lease.</summary>
    public object? State { get; set; }

    internal int BrokenFlag;

    internal int Released;
}

/// <summary>
/// Learns, without a race, that a file is opened for writing: a read lease (fcntl F_SETLEASE) can only be taken while
/// nobody has the file open for writing (a shared writable mapping counts: it holds such a descriptor), and the
/// kernel breaks it when anyone opens the file for writing or truncates it, holding that opener until the lease is
/// let go. The break comes as a real-time signal aimed at this watcher's own thread (F_SETOWN_EX with its thread id,
/// the signal blocked there and read from a signalfd), so no other thread of the process ever sees it. The
/// <c>broken</c> callback runs on that thread before the lease is let go: whatever it undoes is undone before the
/// writer's open returns.
/// </summary>
/// <remarks>
/// The order matters and is kept: F_SETSIG and F_SETOWN_EX before F_SETLEASE (F_SETLEASE sets the owner to the whole
/// process only when none is set, and letting a lease go clears both). If the queue of real-time signals overflows,
/// the kernel sends SIGIO instead, also to this thread: every lease is then taken as broken.
/// </remarks>
internal sealed class FileLeaseWatcher : IDisposable
{
    private readonly Action<FileLease> _broken;
    private readonly Dictionary<int, FileLease> _byFd = [];
    private readonly Lock _gate = new();
    private readonly ManualResetEventSlim _ready = new();
    private readonly SafeDescriptorHandle _wakeup;
    private readonly Thread _thread;
    private readonly int _signal;
    private SafeDescriptorHandle? _signals;
    private int _tid;
    private Exception? _startFailure;
    private int _disposed;

    /// <param name="broken">Called on the watcher's thread when a lease breaks, before it is let go; must not block.</param>
    public FileLeaseWatcher(Action<FileLease> broken)
    {
        _broken = broken;
        _signal = global::Interop.Libc.CurrentSigRtMax() - 3;
        var efd = global::Interop.Libc.EventFd(0, global::Interop.Libc.EFD_CLOEXEC | global::Interop.Libc.EFD_NONBLOCK);
        if (efd < 0)
        {
            throw global::Interop.GetExceptionForError(global::Interop.ErrorInfo.Last(), "eventfd");
        }

        _wakeup = new SafeDescriptorHandle(efd);
        _thread = new Thread(Run) { IsBackground = true, Name = "OnAccess leases" };
        _thread.Start();
        _ready.Wait();
        if (_startFailure is not null)
        {
            throw _startFailure;
        }
    }

    /// <summary>The signal the breaks come as (a real-time signal near SIGRTMAX).</summary>
    public int Signal => _signal;

    /// <summary>Leases held now.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _byFd.Count;
            }
        }
    }

    /// <summary>
    /// Takes a read lease on the file <paramref name="file"/> is open on. Fails (null, with errno) when someone has
    /// it open for writing (EAGAIN), when the filesystem has no leases (EINVAL), or when descriptors run out.
    /// </summary>
    public unsafe FileLease? TryTake(SafeHandle file, out int errno)
    {
        var fd = global::Interop.Libc.Fcntl(file, global::Interop.Libc.F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }

        var descriptor = new SafeDescriptorHandle(fd);
        var owner = new global::Interop.Libc.OwnerEx { Type = global::Interop.Libc.F_OWNER_TID, Pid = _tid };
        var lease = new FileLease(descriptor);
        lock (_gate)
        {
            _byFd[fd] = lease; // before the lease exists, so a break that comes at once finds it
        }

        if (global::Interop.Libc.Fcntl(descriptor, global::Interop.Libc.F_SETSIG, _signal) != 0
            || global::Interop.Libc.Fcntl(descriptor, global::Interop.Libc.F_SETOWN_EX, &owner) != 0
            || global::Interop.Libc.Fcntl(descriptor, global::Interop.Libc.F_SETLEASE, global::Interop.Libc.F_RDLCK) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            Forget(lease);
            descriptor.Dispose();
            return null;
        }

        errno = 0;
        return lease;
    }

    /// <summary>Lets a lease go and closes its descriptor (whether or not it broke). Safe to call more than once.</summary>
    public void Release(FileLease lease)
    {
        if (Interlocked.Exchange(ref lease.Released, 1) != 0)
        {
            return;
        }

        Forget(lease);
        global::Interop.Libc.Fcntl(lease.Descriptor, global::Interop.Libc.F_SETLEASE, global::Interop.Libc.F_UNLCK);
        lease.Descriptor.Dispose();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        global::Interop.Libc.WriteAll(_wakeup, BitConverter.GetBytes(1UL));
        if (_thread.ManagedThreadId != Environment.CurrentManagedThreadId)
        {
            _thread.Join();
        }

        List<FileLease> held;
        lock (_gate)
        {
            held = [.. _byFd.Values];
        }

        foreach (var lease in held)
        {
            Release(lease);
        }

        _signals?.Dispose();
        _wakeup.Dispose();
        _ready.Dispose();
    }

    private void Forget(FileLease lease)
    {
        lock (_gate)
        {
            var number = lease.Descriptor.Number;
            if (_byFd.TryGetValue(number, out var current) && current == lease)
            {
                _byFd.Remove(number);
            }
        }
    }

    private unsafe void Run()
    {
        try
        {
            var set = default(global::Interop.Libc.SigSet);
            set.Add(_signal);
            set.Add(global::Interop.Libc.SIGIO);
            if (global::Interop.Libc.PthreadSigmask(global::Interop.Libc.SIG_BLOCK, &set, null) != 0) // this thread only
            {
                throw new IOException("pthread_sigmask failed: the lease signals could not be blocked on their thread.");
            }

            var sfd = global::Interop.Libc.SignalFd(-1, &set, global::Interop.Libc.SFD_CLOEXEC | global::Interop.Libc.SFD_NONBLOCK);
            if (sfd < 0)
            {
                throw global::Interop.GetExceptionForError(global::Interop.ErrorInfo.Last(), "signalfd");
            }

            _signals = new SafeDescriptorHandle(sfd);
            _tid = global::Interop.Libc.GetTid();
        }
        catch (Exception e)
        {
            _startFailure = e;
            _ready.Set();
            return;
        }

        _ready.Set();
        var buffer = new byte[global::Interop.Libc.SignalFdInfoSize * 16];
        var added = false;
        var wakeupAdded = false;
        try
        {
            _signals.DangerousAddRef(ref added);
            _wakeup.DangerousAddRef(ref wakeupAdded);
            while (true)
            {
                var outcome = KernelRead.WaitAndRead(_signals, _wakeup, buffer, -1, out var count, out _);
                if (outcome != KernelReadOutcome.Data)
                {
                    return; // woken by Dispose (or the descriptor failed: nothing more can come)
                }

                for (var offset = 0; offset + global::Interop.Libc.SignalFdInfoSize <= count; offset += global::Interop.Libc.SignalFdInfoSize)
                {
                    var signal = BitConverter.ToInt32(buffer, offset);
                    if (signal == _signal)
                    {
                        Break(BitConverter.ToInt32(buffer, offset + global::Interop.Libc.SignalFdInfoFdOffset));
                    }
                    else
                    {
                        BreakAll(); // SIGIO: the real-time queue overflowed, so breaks were lost
                    }
                }
            }
        }
        finally
        {
            if (wakeupAdded)
            {
                _wakeup.DangerousRelease();
            }

            if (added)
            {
                _signals.DangerousRelease();
            }
        }
    }

    private void Break(int fd)
    {
        FileLease? lease;
        lock (_gate)
        {
            _byFd.TryGetValue(fd, out lease);
        }

        if (lease is not null)
        {
            BreakOne(lease);
        }
    }

    private void BreakAll()
    {
        List<FileLease> held;
        lock (_gate)
        {
            held = [.. _byFd.Values];
        }

        foreach (var lease in held)
        {
            BreakOne(lease);
        }
    }

    /// <summary>The owner undoes what the lease guarded, then the lease is let go (the writer's open proceeds).</summary>
    private void BreakOne(FileLease lease)
    {
        if (Interlocked.Exchange(ref lease.BrokenFlag, 1) == 0)
        {
            try
            {
                _broken(lease);
            }
            catch (Exception)
            {
                // The owner's callback must not keep a writer waiting: the lease is let go below whatever happened.
            }
        }

        Release(lease);
    }
}
