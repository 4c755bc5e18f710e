using System.Globalization;
using System.Text;

namespace OnAccess;

/// <summary>Facts about an accessing process, read from procfs (never a path under a protected tree).</summary>
internal static class ProcessInfo
{
    /// <summary>
    /// The owner of /proc/PID, one statx call: the effective UID of a dumpable process (a setuid process shows as
    /// root). For reports; exclusions use <see cref="GetEffectiveUid"/>, which reads the status file.
    /// </summary>
    public static uint? GetOwnerUid(int pid) => Interop.Libc.GetOwnerUid("/proc/" + pid.ToString(CultureInfo.InvariantCulture));

    /// <summary>The effective UID from the second field of the "Uid:" line of /proc/PID/status, or null if the process is gone.</summary>
    public static uint? GetEffectiveUid(int pid)
    {
        Span<byte> buffer = stackalloc byte[2048];
        int read;
        try
        {
            using var handle = File.OpenHandle("/proc/" + pid.ToString(CultureInfo.InvariantCulture) + "/status");
            read = RandomAccess.Read(handle, buffer, 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var text = buffer[..read];
        var at = text.IndexOf("\nUid:"u8);
        if (at < 0)
        {
            return null;
        }

        var line = text[(at + 5)..];
        var end = line.IndexOf((byte)'\n');
        line = end < 0 ? line : line[..end];
        var fields = Encoding.ASCII.GetString(line).Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
        return fields.Length > 1 && uint.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var euid) ? euid : null;
    }
}
