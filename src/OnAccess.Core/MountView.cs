using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using OnAccess.Kernel;
using OnAccess.Paths;

namespace OnAccess;

/// <summary>
/// The mounts of the monitor's own mount namespace, from <c>/proc/self/mountinfo</c> (read again at the next use after
/// the file polls <c>POLLPRI</c>, which it does once after each change): what tells a path the monitor can believe.
/// </summary>
/// <remarks>
/// The kernel's path of an open file (<c>/proc/self/fd/N</c>) is the file's place as the monitor's namespace sees it
/// when the mount it was opened through is one of this namespace's; through any other (a bind mount a user made in a
/// namespace of their own) it is a string that user chose. So a path is believed only when the event descriptor's
/// mount id is listed here, and it is never looked up again (a lookup of a path a user chose may enter a FUSE mount
/// that never answers, on the thread every open waits for).
/// </remarks>
internal sealed class MountView : IDisposable
{
    private readonly object _gate = new();
    private readonly SafeDescriptorHandle? _mountInfo;
    private readonly Thread? _watcher;
    private volatile Mount[] _mounts = [];
    private volatile bool _changed = true;
    private volatile bool _disposed;

    public MountView()
    {
        _mountInfo = Open();
        if (_mountInfo is not null)
        {
            _watcher = new Thread(Watch) { IsBackground = true, Name = "OnAccess mounts" };
            _watcher.Start();
        }
    }

    /// <summary>The mount with this id in this namespace, or null (another namespace's, or gone).</summary>
    public Mount? Find(ulong id)
    {
        if (id == 0)
        {
            return null;
        }

        for (var pass = 0; pass < 2; pass++)
        {
            if (_changed)
            {
                Refresh();
            }

            foreach (var m in _mounts)
            {
                if (m.Id == id)
                {
                    return m;
                }
            }

            if (pass == 0 && !_changed)
            {
                return null; // the table is current: not a mount of this namespace
            }
        }

        return null;
    }

    /// <summary>Whether the kernel's path of an open descriptor can be believed: its mount is this namespace's and it still has a name.</summary>
    public bool Believes(in Fanotify.FileIdentity identity) => MountOf(identity) is not null;

    /// <summary>The mount of this namespace an open descriptor's kernel path runs through, or null when that path cannot be believed.</summary>
    public Mount? MountOf(in Fanotify.FileIdentity identity) => identity.LinkCount > 0 ? Find(identity.MountId) : null;

    public void Dispose()
    {
        _disposed = true;
        lock (_gate)
        {
            foreach (var m in _mounts)
            {
                m.Dispose();
            }
        }

        _mountInfo?.Dispose();
    }

    private void Refresh()
    {
        lock (_gate)
        {
            if (!_changed || _disposed)
            {
                return;
            }

            _changed = false;
            var mounts = new List<Mount>();
            try
            {
                foreach (var line in File.ReadLines("/proc/self/mountinfo"))
                {
                    var fields = line.Split(' ');
                    if (fields.Length > 4 && ulong.TryParse(fields[0], CultureInfo.InvariantCulture, out var id) && fields[2].Split(':') is [var major, var minor]
                        && uint.TryParse(major, CultureInfo.InvariantCulture, out var ma) && uint.TryParse(minor, CultureInfo.InvariantCulture, out var mi))
                    {
                        var old = Array.Find(_mounts, m => m.Id == id);
                        var root = Encoding.UTF8.GetBytes(MountTable.DecodeOctalEscapes(fields[3]));
                        var point = Encoding.UTF8.GetBytes(MountTable.DecodeOctalEscapes(fields[4]));
                        mounts.Add(old is not null && old.Root.AsSpan().SequenceEqual(root) && old.Point.AsSpan().SequenceEqual(point)
                            ? old
                            : new Mount(id, Interop.Libc.MakeDev(ma, mi), root, point));
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _changed = true;
                return; // kept as it was: what it does not list is not believed
            }

            foreach (var gone in _mounts.Where(m => !mounts.Contains(m)))
            {
                gone.Dispose();
            }

            _mounts = [.. mounts];
        }
    }

    private unsafe void Watch()
    {
        while (!_disposed)
        {
            var added = false;
            try
            {
                _mountInfo!.DangerousAddRef(ref added);
                var fd = new Interop.Libc.PollFd { Fd = (int)_mountInfo.DangerousGetHandle(), Events = Interop.Libc.POLLPRI };
                if (Interop.Libc.Poll(&fd, 1, 1000) > 0 && (fd.REvents & (Interop.Libc.POLLPRI | Interop.Libc.POLLERR)) != 0)
                {
                    _changed = true;
                }
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            finally
            {
                if (added)
                {
                    _mountInfo!.DangerousRelease();
                }
            }
        }
    }

    private static unsafe SafeDescriptorHandle? Open()
    {
        var path = "/proc/self/mountinfo\0"u8;
        fixed (byte* p = path)
        {
            var fd = Interop.Libc.OpenAt(Interop.Libc.AT_FDCWD, p, Interop.Libc.O_RDONLY | Interop.Libc.O_CLOEXEC, 0);
            return fd < 0 ? null : new SafeDescriptorHandle(fd);
        }
    }

    /// <summary>One mount of this namespace: its id, device, the directory of its filesystem it shows, and where.</summary>
    internal sealed class Mount(ulong id, ulong device, byte[] root, byte[] point) : IDisposable
    {
        private SafeDescriptorHandle? _top;

        public ulong Id { get; } = id;

        public ulong Device { get; } = device;

        public byte[] Root { get; } = root;

        public byte[] Point { get; } = point;

        /// <summary>A path through this mount, as a path within its filesystem; null when it is not below the mount point.</summary>
        public byte[]? Relative(byte[] path) => Tail(path) is { } tail
            ? Root is [(byte)'/'] ? (tail.Length == 0 ? "/"u8.ToArray() : tail) : [.. Root, .. tail]
            : null;

        /// <summary>The part of <paramref name="path"/> below the mount point ("" for the mount point itself); null when not below it.</summary>
        public byte[]? Tail(byte[] path)
        {
            if (Point is [(byte)'/'])
            {
                return path is [(byte)'/'] ? [] : path;
            }

            return path.AsSpan().StartsWith(Point) && (path.Length == Point.Length || path[Point.Length] == (byte)'/') ? path[Point.Length..] : null;
        }

        /// <summary>
        /// Opens a directory below this mount, walking only within it (openat2 from the mount's top: no symbolic link,
        /// no other mount, nothing above it): whatever a user renames meanwhile, the walk never leaves this filesystem.
        /// </summary>
        public unsafe SafeDescriptorHandle? OpenDirectoryBelow(byte[] tail)
        {
            var top = Top();
            if (top is null)
            {
                return null;
            }

            var relative = tail.AsSpan().TrimStart((byte)'/');
            var z = new byte[relative.Length + 2];
            if (relative.IsEmpty)
            {
                z[0] = (byte)'.';
            }
            else
            {
                relative.CopyTo(z);
            }

            fixed (byte* p = z)
            {
                try
                {
                    var fd = Interop.Libc.OpenAt2(top, p, Interop.Libc.O_RDONLY | Interop.Libc.O_CLOEXEC | Interop.Libc.O_NONBLOCK | Interop.Libc.O_DIRECTORY, Interop.Libc.RESOLVE_NO_SYMLINKS | Interop.Libc.RESOLVE_NO_MAGICLINKS | Interop.Libc.RESOLVE_NO_XDEV | Interop.Libc.RESOLVE_BENEATH);
                    return fd < 0 ? null : new SafeDescriptorHandle(fd);
                }
                catch (ObjectDisposedException)
                {
                    return null; // the mount went (the table was read again meanwhile): nothing is settled there
                }
            }
        }

        public void Dispose()
        {
            lock (this)
            {
                _top?.Dispose();
                _top = null;
            }
        }

        /// <summary>The mount's top directory, opened once by its mount point and kept only if it is this very mount.</summary>
        private unsafe SafeDescriptorHandle? Top()
        {
            lock (this)
            {
                if (_top is not null)
                {
                    return _top;
                }

                var z = new byte[Point.Length + 1];
                Point.CopyTo(z, 0);
                fixed (byte* p = z)
                {
                    var fd = Interop.Libc.OpenAt(Interop.Libc.AT_FDCWD, p, Interop.Libc.O_PATH | Interop.Libc.O_CLOEXEC | Interop.Libc.O_DIRECTORY | Interop.Libc.O_NOFOLLOW, 0);
                    if (fd < 0)
                    {
                        return null;
                    }

                    var handle = new SafeDescriptorHandle(fd);
                    if (Descriptors.StatusOf(handle)?.MountId != Id)
                    {
                        handle.Dispose(); // covered by another mount since: not this one
                        return null;
                    }

                    return _top = handle;
                }
            }
        }
    }
}
