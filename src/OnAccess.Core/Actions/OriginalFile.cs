using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using OnAccess.Kernel;
using OnAccess.Text;

namespace OnAccess;

/// <summary>
/// Touching a file by the path someone else controls, without letting them aim it elsewhere: the directory that holds
/// the name is reached from "/" one component at a time without following a link (a directory swapped for a link on
/// the way stops the walk), and the name itself is only ever handled relative to that directory's descriptor: moved
/// aside under a random name before it is checked (so what is checked is what is removed), never followed.
/// </summary>
internal static class OriginalFile
{
    /// <summary>The directory that holds <paramref name="rawPath"/>'s last component, and that component; or why not.</summary>
    public static SafeDescriptorHandle? OpenParent(ReadOnlySpan<byte> rawPath, out byte[] name, out string? failure)
    {
        name = [];
        var components = new List<byte[]>();
        foreach (var range in rawPath.Split((byte)'/'))
        {
            if (range.End.Value > range.Start.Value)
            {
                components.Add(rawPath[range].ToArray());
            }
        }

        if (rawPath.IsEmpty || rawPath[0] != (byte)'/' || components.Count == 0 || components.Any(c => !Descriptors.IsSingleComponent(c)))
        {
            failure = $"{DisplayText.Escape(rawPath)} is not an absolute path of plain components";
            return null;
        }

        var directory = Descriptors.OpenDirectory("/", out var errno);
        for (var i = 0; directory is not null && i < components.Count - 1; i++)
        {
            var next = Descriptors.OpenDirectory(directory, components[i], out errno);
            directory.Dispose();
            directory = next;
        }

        if (directory is null)
        {
            failure = $"a directory on the way to {DisplayText.Escape(rawPath)} is gone or is not a directory (a link is not followed): {Why(errno)}";
            return null;
        }

        name = components[^1];
        failure = null;
        return directory;
    }

    /// <summary>
    /// Removes <paramref name="name"/> from <paramref name="parent"/> only if it is the scanned file: the regular file
    /// <paramref name="expected"/>, seen through the mount <paramref name="mount"/> (a path read from a file opened in
    /// another mount namespace can name a different file here: then nothing is touched). It is checked where it is;
    /// then moved aside under a random name (in case the name was swapped meanwhile: a rename moves an entry, never what
    /// a link points to), checked again, and unlinked; if what was moved is something else, it is put back (exchanged
    /// back, if its name was taken again meanwhile).
    /// </summary>
    /// <returns>Null when removed, else why not (and whether it is a swap: the name names something else, or nothing).</returns>
    public static unsafe (string Reason, bool Swapped)? RemoveIfSame(SafeHandle parent, byte[] name, InodeId expected, ulong mount)
    {
        var aside = Encoding.ASCII.GetBytes($".onaccess-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}\0");
        var z = Terminated(name);
        fixed (byte* from = z)
        fixed (byte* to = aside)
        {
            if (Names(parent, from, expected, mount) is { } notThere)
            {
                return (notThere, true); // not even moved: the name is not the scanned file
            }

            if (global::Interop.Libc.RenameAt2(parent, from, parent, to, global::Interop.Libc.RENAME_NOREPLACE) != 0)
            {
                var error = Marshal.GetLastPInvokeError();
                return error == global::Interop.Errno.ENOENT ? ("it is gone already", true) : ($"it could not be moved aside: {Why(error)}", false);
            }

            var moved = Names(parent, to, expected, mount);
            if (moved is null && global::Interop.Libc.UnlinkAt(parent, to, 0) == 0)
            {
                return null;
            }

            var why = moved is null ? $"it could not be removed: {Why(Marshal.GetLastPInvokeError())}" : "its path names another file now (swapped since the scan): nothing was touched";
            if (global::Interop.Libc.RenameAt2(parent, to, parent, from, global::Interop.Libc.RENAME_NOREPLACE) != 0
                && global::Interop.Libc.RenameAt2(parent, to, parent, from, global::Interop.Libc.RENAME_EXCHANGE) != 0)
            {
                why += $"; what was there is left beside it as {Encoding.ASCII.GetString(aside, 0, aside.Length - 1)}";
            }

            return (why, moved is not null);
        }
    }

    /// <summary>Null when <paramref name="name"/> of <paramref name="parent"/> is the scanned regular file through the same mount (not followed); else why not.</summary>
    private static unsafe string? Names(SafeHandle parent, byte* name, InodeId expected, ulong mount)
    {
        global::Interop.Libc.Statx statx;
        if (global::Interop.Libc.StatxAt(parent, name, global::Interop.Libc.AT_SYMLINK_NOFOLLOW, StatxTypeInodeMount, &statx) != 0)
        {
            var error = Marshal.GetLastPInvokeError();
            return error == global::Interop.Errno.ENOENT ? "it is gone already" : $"it cannot be examined: {Why(error)}";
        }

        if ((statx.Mode & 0xF000) != 0x8000 || new InodeId(global::Interop.Libc.MakeDev(statx.DevMajor, statx.DevMinor), statx.Ino) != expected)
        {
            return "its path names another file now (swapped since the scan): nothing was touched";
        }

        return mount != 0 && (statx.Mask & StatxMountId) != 0 && statx.MountId != mount
            ? "its path was read through another mount (another mount namespace?), and here names the scanned file through a different one: nothing was touched"
            : null;
    }

    /// <summary>The mount a descriptor's file was opened through (statx's stx_mnt_id, 0 where the kernel has none).</summary>
    public static ulong MountOf(SafeHandle file) => Descriptors.StatusOf(file)?.MountId ?? 0;

    private const uint StatxMountId = global::Interop.Libc.STATX_MNT_ID;

    private const uint StatxTypeInodeMount = 0x0001 | 0x0100 | StatxMountId;

    /// <summary>Creates <paramref name="name"/> in <paramref name="parent"/> for writing, only if nothing has that name (no link followed).</summary>
    public static unsafe SafeFileHandle? CreateNew(SafeHandle parent, byte[] name, out int errno)
    {
        var z = Terminated(name);
        fixed (byte* p = z)
        {
            var fd = global::Interop.Libc.OpenAt(parent, p, global::Interop.Libc.O_WRONLY | global::Interop.Libc.O_CREAT | global::Interop.Libc.O_EXCL | global::Interop.Libc.O_NOFOLLOW | global::Interop.Libc.O_CLOEXEC, 0b110_000_000);
            errno = fd < 0 ? global::Interop.ErrorInfo.Last().RawErrno : 0;
            return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
        }
    }

    /// <summary>Whether the detection's recorded path names the scanned file now, through the same mount (nothing is touched).</summary>
    public static unsafe bool Check(Detection detection, out string why)
    {
        if (detection.RawPath is not { } raw)
        {
            why = "its path is not known";
            return false;
        }

        using var parent = OpenParent(raw, out var name, out var failure);
        if (parent is null)
        {
            why = failure!;
            return false;
        }

        var z = Terminated(name);
        fixed (byte* p = z)
        {
            why = Names(parent, p, new InodeId(detection.Device, detection.Inode), detection.MountId) ?? string.Empty;
            return why.Length == 0;
        }
    }

    /// <summary>Renames <paramref name="from"/> over <paramref name="to"/> within <paramref name="parent"/> (a record of the quarantine's own).</summary>
    public static unsafe bool Replace(SafeHandle parent, byte[] from, byte[] to)
    {
        var a = Terminated(from);
        var b = Terminated(to);
        fixed (byte* pa = a)
        fixed (byte* pb = b)
        {
            return global::Interop.Libc.RenameAt2(parent, pa, parent, pb, 0) == 0;
        }
    }

    /// <summary>Unlinks <paramref name="name"/> of <paramref name="parent"/> (a file of the quarantine's own).</summary>
    public static unsafe bool Unlink(SafeHandle parent, byte[] name)
    {
        var z = Terminated(name);
        fixed (byte* p = z)
        {
            return global::Interop.Libc.UnlinkAt(parent, p, 0) == 0;
        }
    }

    /// <summary>Renames <paramref name="from"/> to <paramref name="to"/> within <paramref name="parent"/>, never over an existing name.</summary>
    public static unsafe bool Rename(SafeHandle parent, byte[] from, byte[] to)
    {
        var a = Terminated(from);
        var b = Terminated(to);
        fixed (byte* pa = a)
        fixed (byte* pb = b)
        {
            return global::Interop.Libc.RenameAt2(parent, pa, parent, pb, global::Interop.Libc.RENAME_NOREPLACE) == 0;
        }
    }

    private static byte[] Terminated(byte[] name)
    {
        var z = new byte[name.Length + 1];
        name.CopyTo(z, 0);
        return z;
    }

    private static string Why(int errno) => global::Interop.ErrorInfo.FromErrno(errno).Message;
}
