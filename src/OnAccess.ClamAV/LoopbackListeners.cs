using System.Globalization;
using System.Net;

namespace OnAccess.ClamAV;

/// <summary>
/// Who listens on a TCP port of this machine: the owners (uid) of the listening sockets /proc/net/tcp and tcp6 list for
/// it, on the address a connection reached or on a wildcard address (either may have accepted it).
/// </summary>
internal static class LoopbackListeners
{
    private const string Listen = "0A"; // TCP_LISTEN

    /// <summary>The uids of the sockets listening on <paramref name="reached"/>'s port that could have accepted a connection to it.</summary>
    public static List<uint> OwnersOf(IPEndPoint reached, string procNet = "/proc/net")
    {
        var owners = new List<uint>();
        var address = reached.Address.IsIPv4MappedToIPv6 ? reached.Address.MapToIPv4() : reached.Address;
        foreach (var file in new[] { "tcp", "tcp6" })
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(Path.Combine(procNet, file));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // no IPv6 here
            }

            foreach (var line in lines.Skip(1))
            {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 8 || fields[3] != Listen || fields[1].Split(':') is not [var hexAddress, var hexPort]
                    || !int.TryParse(hexPort, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var port) || port != reached.Port
                    || Parse(hexAddress) is not { } local || !uint.TryParse(fields[7], CultureInfo.InvariantCulture, out var uid))
                {
                    continue;
                }

                var listening = local.IsIPv4MappedToIPv6 ? local.MapToIPv4() : local;
                if (listening.Equals(address) || listening.Equals(IPAddress.Any) || listening.Equals(IPAddress.IPv6Any))
                {
                    owners.Add(uid);
                }
            }
        }

        return owners;
    }

    /// <summary>The kernel's hexadecimal address: 32-bit words in the machine's byte order (little-endian here).</summary>
    private static IPAddress? Parse(string hex)
    {
        if (hex.Length is not (8 or 32))
        {
            return null;
        }

        var bytes = new byte[hex.Length / 2];
        for (var word = 0; word < hex.Length / 8; word++)
        {
            if (!uint.TryParse(hex.AsSpan(word * 8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value))
            {
                return null;
            }

            BitConverter.TryWriteBytes(bytes.AsSpan(word * 4, 4), value);
        }

        return new IPAddress(bytes);
    }
}
