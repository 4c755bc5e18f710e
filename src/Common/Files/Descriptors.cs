using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OnAccess.Kernel;

/// <summary>What identifies an inode on this machine while it exists: st_dev (glibc's encoding) and st_ino.</summary>
internal readonly record struct InodeId(ulong Device, ulong Inode);

/// <summary>
/// What one statx of a descriptor says of its file that a decision about who may change or move it needs: device,
/// inode, the mount it was opened through, owner and mode.
/// </summary>
internal readonly record struct DescriptorStatus(ulong Device, ulong Inode, ulong MountId, uint Uid, uint Mode);

/// <summary>One entry of a directory, as getdents64 gives it: the name's bytes and what kind of entry it is.</summary>
internal readonly record struct DirectoryEntry(byte[] Name, byte Type)
{
    public bool IsDirectory => Type == global::Interop.Libc.DT_DIR;
}

/// <summary>
/// Work on directories through descriptors, never through path strings that could be re-resolved: open one name
/// relative to a directory descriptor without following a link, read a directory's entries, name an inode by a
/// file handle and open it again by that handle wherever it has moved. Names are bytes (any byte but '/' and NUL).
/// </summary>
internal static class Descriptors
{
    private const int DirectoryFlags = global::Interop.Libc.O_RDONLY | global::Interop.Libc.O_CLOEXEC | global::Interop.Libc.O_NONBLOCK;

    /// <summary>Whether <paramref name="name"/> is one path component: not empty, ".", "..", nor holding '/' or NUL.</summary>
    public static bool IsSingleComponent(ReadOnlySpan<byte> name) =>
        name.Length > 0 && !name.SequenceEqual("."u8) && !name.SequenceEqual(".."u8) && name.IndexOfAny((byte)'/', (byte)0) < 0;

    /// <summary>Opens the directory <paramref name="name"/> of <paramref name="parent"/> read-only; a link is not followed (ELOOP/ENOTDIR).</summary>
    public static unsafe SafeDescriptorHandle? OpenDirectory(SafeHandle parent, ReadOnlySpan<byte> name, out int errno)
    {
        if (!IsSingleComponent(name))
        {
            errno = global::Interop.Errno.EINVAL;
            return null;
        }

        Span<byte> z = name.Length < 512 ? stackalloc byte[name.Length + 1] : new byte[name.Length + 1];
        name.CopyTo(z);
        z[^1] = 0;
        fixed (byte* p = z)
        {
            return Wrap(global::Interop.Libc.OpenAt(parent, p, DirectoryFlags | global::Interop.Libc.O_DIRECTORY | global::Interop.Libc.O_NOFOLLOW, 0), out errno);
        }
    }

    /// <summary>Opens an absolute directory path (a configured root): components may be links, the last may not.</summary>
    public static unsafe SafeDescriptorHandle? OpenDirectory(string path, out int errno)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            return Wrap(global::Interop.Libc.OpenAt(global::Interop.Libc.AT_FDCWD, p, DirectoryFlags | global::Interop.Libc.O_DIRECTORY | global::Interop.Libc.O_NOFOLLOW, 0), out errno);
        }
    }

    /// <summary>
    /// Opens a regular file <paramref name="name"/> of <paramref name="parent"/> read-only for scanning: it is first
    /// opened as a path (O_PATH, no link followed, nothing of the file run: a device's driver is never called) and
    /// its type checked on that descriptor; only a regular file is then opened for reading, through the descriptor
    /// itself, so the file checked is the file read. Non-blocking and never a controlling terminal.
    /// </summary>
    /// <returns>The file, or <see langword="null"/> (with errno, 0 when the entry is not a regular file).</returns>
    public static unsafe SafeFileHandle? OpenRegularFile(SafeHandle parent, ReadOnlySpan<byte> name, out int errno)
    {
        if (!IsSingleComponent(name))
        {
            errno = global::Interop.Errno.EINVAL;
            return null;
        }

        var z = new byte[name.Length + 1];
        name.CopyTo(z);
        int pathFd;
        fixed (byte* p = z)
        {
            pathFd = global::Interop.Libc.OpenAt(parent, p, global::Interop.Libc.O_PATH | global::Interop.Libc.O_NOFOLLOW | global::Interop.Libc.O_CLOEXEC, 0);
        }

        if (pathFd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }

        using var path = new SafeDescriptorHandle(pathFd);
        if (!TryGetIdentity(path, out var id, out var mode, out _) || (mode & 0xF000) != 0x8000)
        {
            errno = 0;
            return null;
        }

        var reopen = System.Text.Encoding.ASCII.GetBytes($"/proc/self/fd/{pathFd}\0");
        int fd;
        fixed (byte* p = reopen)
        {
            fd = global::Interop.Libc.OpenAt(global::Interop.Libc.AT_FDCWD, p, global::Interop.Libc.O_RDONLY | global::Interop.Libc.O_NONBLOCK | global::Interop.Libc.O_NOCTTY | global::Interop.Libc.O_CLOEXEC, 0);
        }

        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }

        var file = new SafeFileHandle(fd, ownsHandle: true);
        if (!TryGetIdentity(file, out var opened, out _, out _) || opened != id)
        {
            file.Dispose();
            errno = 0;
            return null;
        }

        errno = 0;
        return file;
    }

    /// <summary>Device, inode and mode of an open descriptor (one statx), and whether it is the root of a mount.</summary>
    public static unsafe bool TryGetIdentity(SafeHandle fd, out InodeId id, out uint mode, out bool mountRoot)
    {
        global::Interop.Libc.Statx statx;
        byte empty = 0;
        if (global::Interop.Libc.StatxAt(fd, &empty, global::Interop.Libc.AT_EMPTY_PATH, 0x0001 /* STATX_TYPE */ | 0x0100 /* STATX_INO */, &statx) != 0)
        {
            id = default;
            mode = 0;
            mountRoot = false;
            return false;
        }

        id = new InodeId(global::Interop.Libc.MakeDev(statx.DevMajor, statx.DevMinor), statx.Ino);
        mode = statx.Mode;
        mountRoot = (statx.AttributesMask & statx.Attributes & global::Interop.Libc.STATX_ATTR_MOUNT_ROOT) != 0;
        return true;
    }

    /// <summary>Device, inode, mount, owner and mode of an open descriptor (one statx); null when statx fails or the kernel reports no mount id.</summary>
    public static unsafe DescriptorStatus? StatusOf(SafeHandle fd)
    {
        global::Interop.Libc.Statx statx;
        byte empty = 0;
        const uint Mask = 0x1 /* TYPE */ | 0x2 /* MODE */ | 0x8 /* UID */ | global::Interop.Libc.STATX_INO | global::Interop.Libc.STATX_MNT_ID;
        if (global::Interop.Libc.StatxAt(fd, &empty, global::Interop.Libc.AT_EMPTY_PATH, Mask, &statx) != 0 || (statx.Mask & global::Interop.Libc.STATX_MNT_ID) == 0)
        {
            return null;
        }

        return new DescriptorStatus(global::Interop.Libc.MakeDev(statx.DevMajor, statx.DevMinor), statx.Ino, statx.MountId, statx.Uid, statx.Mode);
    }

    /// <summary>The file handle that names the descriptor's inode wherever it moves (name_to_handle_at); null where the filesystem has none.</summary>
    public static unsafe byte[]? GetHandle(SafeHandle fd)
    {
        global::Interop.Libc.FileHandle handle;
        handle.HandleBytes = global::Interop.Libc.MAX_HANDLE_SZ;
        int mountId;
        byte empty = 0;
        if (global::Interop.Libc.NameToHandleAt(fd, &empty, &handle, &mountId, global::Interop.Libc.AT_EMPTY_PATH) != 0 || handle.HandleBytes > global::Interop.Libc.MAX_HANDLE_SZ)
        {
            return null;
        }

        // Stored as: handle_type (4 bytes, little-endian), then the handle's bytes.
        var stored = new byte[4 + handle.HandleBytes];
        BitConverter.TryWriteBytes(stored, handle.HandleType);
        new ReadOnlySpan<byte>(handle.Bytes, (int)handle.HandleBytes).CopyTo(stored.AsSpan(4));
        return stored;
    }

    /// <summary>Opens a directory by the handle <see cref="GetHandle"/> gave, on the filesystem of <paramref name="anyOnSameFilesystem"/>.</summary>
    public static unsafe SafeDescriptorHandle? OpenByHandle(SafeHandle anyOnSameFilesystem, byte[] stored, out int errno)
    {
        global::Interop.Libc.FileHandle handle;
        handle.HandleType = BitConverter.ToInt32(stored, 0);
        handle.HandleBytes = (uint)(stored.Length - 4);
        stored.AsSpan(4).CopyTo(new Span<byte>(handle.Bytes, global::Interop.Libc.MAX_HANDLE_SZ));
        return Wrap(global::Interop.Libc.OpenByHandleAt(anyOnSameFilesystem, &handle, DirectoryFlags | global::Interop.Libc.O_DIRECTORY), out errno);
    }

    /// <summary>
    /// Every entry of an open directory but "." and "..", from getdents64. An entry whose type the filesystem does not
    /// give (DT_UNKNOWN) is looked up with statx relative to the directory, not following a link.
    /// </summary>
    /// <returns>0, or errno when reading failed part way (the entries read so far are in <paramref name="entries"/>).</returns>
    public static unsafe int ReadEntries(SafeHandle directory, List<DirectoryEntry> entries)
    {
        const int Size = 32 * 1024;
        var buffer = ArrayPool<byte>.Shared.Rent(Size);
        try
        {
            while (true)
            {
                nint n;
                fixed (byte* p = buffer)
                {
                    n = global::Interop.Libc.GetDents64(directory, p, Size);
                }

                if (n == 0)
                {
                    return 0;
                }

                if (n < 0)
                {
                    return Marshal.GetLastPInvokeError();
                }

                for (var offset = 0; offset < n;)
                {
                    var reclen = BitConverter.ToUInt16(buffer, offset + 16);
                    var type = buffer[offset + 18];
                    var name = buffer.AsSpan(offset + global::Interop.Libc.DirentNameOffset, reclen - global::Interop.Libc.DirentNameOffset);
                    name = name[..name.IndexOf((byte)0)];
                    if (!name.SequenceEqual("."u8) && !name.SequenceEqual(".."u8))
                    {
                        entries.Add(new DirectoryEntry(name.ToArray(), type == global::Interop.Libc.DT_UNKNOWN ? TypeOf(directory, name) : type));
                    }

                    offset += reclen;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>"/proc/self/fd/N": for calls that take only a path (inotify_add_watch). It names the very inode the descriptor holds.</summary>
    public static string ProcPath(SafeHandle fd) => "/proc/self/fd/" + ((int)fd.DangerousGetHandle()).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static unsafe byte TypeOf(SafeHandle directory, ReadOnlySpan<byte> name)
    {
        var z = new byte[name.Length + 1];
        name.CopyTo(z);
        global::Interop.Libc.Statx statx;
        fixed (byte* p = z)
        {
            if (global::Interop.Libc.StatxAt(directory, p, global::Interop.Libc.AT_SYMLINK_NOFOLLOW, 0x0001 /* STATX_TYPE */, &statx) != 0)
            {
                return global::Interop.Libc.DT_UNKNOWN;
            }
        }

        return (statx.Mode & 0xF000) switch
        {
            0x4000 => global::Interop.Libc.DT_DIR,
            0x8000 => global::Interop.Libc.DT_REG,
            0xA000 => global::Interop.Libc.DT_LNK,
            _ => global::Interop.Libc.DT_UNKNOWN,
        };
    }

    private static SafeDescriptorHandle? Wrap(int fd, out int errno)
    {
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }

        errno = 0;
        return new SafeDescriptorHandle(fd);
    }
}
