using System.Net.Sockets;
using OnAccess.Config;

namespace OnAccess.ClamAV;

/// <summary>Where clamd is and how to talk to it.</summary>
public sealed class ClamdScannerOptions
{
    /// <summary>
    /// clamd endpoints: <c>unix:/path/to/clamd.ctl</c> or <c>tcp://host:port</c>, at most 64. Each scan goes to the
    /// endpoint in the balance with the fewest scans in flight (a unix one first among equals, otherwise in turn); a scan
    /// whose endpoint fails is tried on the next one.
    /// </summary>
    public IList<string> Endpoints { get; set; } = [];

    /// <summary>FILDES where possible (the default), or always INSTREAM.</summary>
    public ClamdScanMode Mode { get; set; }

    /// <summary>clamd's <c>StreamMaxLength</c>: larger files are reported as skipped, never as clean. The default is 100 MiB.</summary>
    public long StreamMaxLength { get; set; } = ClamdConf.DefaultStreamMaxLength;

    /// <summary>How long a connection attempt may take. The default is 5 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long start-up waits for a clamd endpoint to answer PING before it gives up (clamonacc's <c>--wait</c>). The
    /// monitor puts no mark until one answers; when none does in time, it does not start, and the error names each
    /// endpoint and why. The default, zero, asks once.
    /// </summary>
    public TimeSpan StartupWait { get; set; }

    /// <summary>
    /// How long a scan waits for its endpoint's reply before that endpoint is asked PING on a connection of its own: a
    /// clamd that answers is busy and the scan goes on waiting (as long as the open's deadline allows); one that does not
    /// answer within this time either is frozen or gone, so the attempt is abandoned, counted as a failure, and the scan
    /// is tried on another endpoint. A frozen clamd so costs a scan at most twice this. With another endpoint to go to, a
    /// connection not accepted within this time is not waited for either. With a single endpoint nothing is abandoned
    /// early (there is nowhere else to go: the open's deadline decides). Keep it well under <c>OnAccessCurlTimeout</c>.
    /// The default is 1 second.
    /// </summary>
    public TimeSpan ReplyTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Failed attempts in a row (connect error, timeout, no reply, malformed reply, refused) after which an endpoint is
    /// taken out of the balance: scans go to the others and it is probed every <see cref="ProbeInterval"/>. The
    /// default is 3.
    /// </summary>
    public int EjectAfterFailures { get; set; } = 3;

    /// <summary>
    /// How often an ejected endpoint is sent PING; on PONG it is asked its VERSION and readmitted. The default is 5
    /// seconds.
    /// </summary>
    public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Idle sessions kept per endpoint for reuse. The default is 8.</summary>
    public int MaxIdleSessions { get; set; } = 8;

    /// <summary>
    /// The users clamd may run as, besides root: a unix endpoint whose listening process runs as anyone else, or whose
    /// socket sits where anyone else could have put it, is refused before anything is sent to it (the scan then follows
    /// <c>OnAccessDenyOnError</c>). <see cref="FromClamdConf"/> adds clamd.conf's <c>User</c>. The default is
    /// <c>clamav</c>, the user Debian's and most packages' clamd runs as.
    /// </summary>
    public IList<string> TrustedUsers { get; set; } = ["clamav"];

    /// <summary>Takes the endpoints and the stream limit from a clamd.conf (<c>LocalSocket</c>, <c>TCPSocket</c>, <c>TCPAddr</c>, <c>StreamMaxLength</c>).</summary>
    /// <param name="conf">The parsed clamd.conf.</param>
    /// <returns>This instance.</returns>
    public ClamdScannerOptions FromClamdConf(ClamdConf conf)
    {
        ArgumentNullException.ThrowIfNull(conf);
        if (conf.LocalSocket is { } socket)
        {
            Endpoints.Add("unix:" + socket);
        }

        if (conf.TcpSocket is { } port)
        {
            var addresses = conf.TcpAddresses.Where(a => a != "any").ToList();
            foreach (var address in addresses.Count > 0 ? addresses : ["127.0.0.1"])
            {
                Endpoints.Add($"tcp://{(address.Contains(':', StringComparison.Ordinal) ? "[" + address + "]" : address)}:{port}");
            }
        }

        StreamMaxLength = conf.StreamMaxLength;
        if (conf.GetValue("User") is { } user && !TrustedUsers.Contains(user))
        {
            TrustedUsers.Add(user);
        }

        return this;
    }
}
