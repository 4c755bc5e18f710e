using System.Runtime.InteropServices;

namespace OnAccess.Kernel;

/// <summary>
/// Filesystems whose files can change without a write through this kernel's inode: FUSE (sshfs, bindfs, virtiofs, ...),
/// network and cluster filesystems. There no lease breaks and no fanotify event says the content changed, and the
/// timestamps are the server's, so no verdict may be remembered for their files.
/// </summary>
internal static class ChangedElsewhere
{
    // statfs(2) f_type magic numbers (linux/magic.h and the filesystems' own).
    private static readonly HashSet<long> Magics =
    [
        0x65735546, // FUSE (fuseblk, virtiofs too)
        0x6969, // NFS
        0x517B, // SMB
        0xFE534D42, // SMB2
        0xFF534D42, // CIFS
        0x01021997, // 9P
        0x00C36400, // Ceph
        0x5346414F, // AFS
        0x6B414653, // kAFS
        0x73757245, // Coda
        0x7461636F, // OCFS2
        0x01161970, // GFS2
        0x13661366, // OrangeFS
        0x786F4256, // VirtualBox shared folders
        0x0BD00BD0, // Lustre
    ];

    /// <summary>Whether <paramref name="file"/> lies on such a filesystem (or its filesystem cannot be told: then too).</summary>
    public static unsafe bool Is(SafeHandle file)
    {
        var buffer = stackalloc byte[global::Interop.Libc.StatfsSize];
        try
        {
            if (global::Interop.Libc.FStatFs(file, buffer) != 0)
            {
                return true;
            }
        }
        catch (ObjectDisposedException)
        {
            return true;
        }

        var type = IntPtr.Size == 8 ? *(long*)buffer : (uint)*(int*)buffer;
        return Magics.Contains(type);
    }
}
