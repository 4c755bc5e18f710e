using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace OnAccess.ClamAV;

/// <summary>
/// Who may be clamd. A unix endpoint gets the descriptor of whatever file an access opened (root's, read through
/// FILDES) and decides whether that access is allowed, so before anything is sent the scanner checks that the process
/// listening is root or one of <see cref="ClamdScannerOptions.TrustedUsers"/> (SO_PEERCRED), and that nobody else could
/// have put that socket there: every directory from the socket's up to <c>/</c> is owned by root or a trusted user and
/// is not writable by others, except a sticky one such as <c>/tmp</c> whose socket file a trusted user owns (there,
/// others may create files but not replace one they do not own).
/// </summary>
internal sealed class ClamdTrust
{
    private const uint WritableByOthers = 0x2; // S_IWOTH
    private const uint Sticky = 0x200; // S_ISVTX

    private readonly HashSet<uint> _uids = [0];

    public ClamdTrust(IEnumerable<string> users)
    {
        foreach (var user in users)
        {
            if (Interop.Libc.GetUserId(user) is { } uid)
            {
                _uids.Add(uid);
            }
        }
    }

    /// <summary>Whether a user may be clamd (root always may).</summary>
    public bool IsTrusted(uint uid) => _uids.Contains(uid);

    /// <summary>Why a connected unix socket's peer is not to be trusted, or <see langword="null"/> when it is.</summary>
    public string? CheckPeer(Socket socket, string socketPath)
    {
        if (Interop.Libc.GetPeerCredentials(socket.SafeHandle) is not { } peer)
        {
            return $"the credentials of the process listening at {socketPath} cannot be read ({Marshal.GetLastPInvokeError()})";
        }

        return IsTrusted(peer.Uid)
            ? CheckPath(socketPath)
            : $"the process listening at {socketPath} (pid {peer.Pid}) runs as uid {peer.Uid}, which is neither root nor a trusted clamd user (ClamdScannerOptions.TrustedUsers, clamd.conf's User)";
    }

    /// <summary>
    /// Why a TCP connection to this machine's own loopback address is not to be trusted, or <see langword="null"/> when
    /// it is: every socket that listens on that port (on that address or a wildcard one) must belong to root or a trusted
    /// user. A port at or above <c>net.ipv4.ip_unprivileged_port_start</c> is anyone's to take while clamd is down, and a
    /// taker that answered PONG and then "OK" to every scan would be readmitted and believed.
    /// </summary>
    public string? CheckLoopback(System.Net.IPEndPoint reached)
    {
        var owners = LoopbackListeners.OwnersOf(reached);
        if (owners.Count == 0)
        {
            return $"no listening socket for {reached} is found in /proc/net/tcp, so its owner cannot be checked";
        }

        foreach (var uid in owners.Where(uid => !IsTrusted(uid)))
        {
            return $"the socket listening on {reached} belongs to uid {uid}, which is neither root nor a trusted clamd user (ClamdScannerOptions.TrustedUsers, clamd.conf's User)";
        }

        return null;
    }

    /// <summary>Why the socket's place is not safe from other users, or <see langword="null"/> when it is.</summary>
    public string? CheckPath(string socketPath)
    {
        if (Stat(socketPath, follow: false) is not { } socket)
        {
            return $"{socketPath} cannot be examined";
        }

        // The directories as the kernel resolves them (a link on the way is followed: its target is what counts).
        var directory = Path.GetDirectoryName(Path.GetFullPath(socketPath));
        var resolved = directory is null ? null : new DirectoryInfo(directory).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? directory;
        for (var d = resolved; !string.IsNullOrEmpty(d); d = Path.GetDirectoryName(d))
        {
            if (Stat(d, follow: true) is not { } dir)
            {
                return $"{d} cannot be examined";
            }

            if (!IsTrusted(dir.Uid))
            {
                return $"{d}, on the way to {socketPath}, is owned by uid {dir.Uid}, who could put another socket there";
            }

            if ((dir.Mode & WritableByOthers) != 0 && ((dir.Mode & Sticky) == 0 || !IsTrusted(socket.Uid)))
            {
                return (dir.Mode & Sticky) == 0
                    ? $"{d}, on the way to {socketPath}, is writable by every user, who could put another socket there"
                    : $"{socketPath} is owned by uid {socket.Uid}, not by root or a trusted clamd user, in the directory {d} that every user may write";
            }
        }

        return null;
    }

    private static unsafe (uint Uid, uint Mode)? Stat(string path, bool follow)
    {
        Interop.Libc.Statx statx;
        return Interop.Libc.StatxPath(Interop.Libc.AT_FDCWD, path, follow ? 0 : Interop.Libc.AT_SYMLINK_NOFOLLOW, 0x0002 /* STATX_MODE */ | 0x0008 /* STATX_UID */, &statx) == 0
            ? (statx.Uid, statx.Mode)
            : null;
    }
}
