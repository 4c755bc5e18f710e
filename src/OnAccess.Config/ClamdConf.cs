using System.Globalization;
using System.Text;

namespace OnAccess.Config;

/// <summary>
/// A clamd.conf read with ClamAV's own syntax: every directive of ClamAV 1.4 is accepted and kept; the on-access
/// directives become <see cref="OnAccessOptions"/>, and the ones a scanner connection needs are typed here.
/// Reading throws <see cref="ClamdConfException"/> and nothing else.
/// </summary>
public sealed class ClamdConf
{
    /// <summary>clamd's default <c>StreamMaxLength</c>: 100 MiB.</summary>
    public const long DefaultStreamMaxLength = 100L * 1024 * 1024;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Dictionary<string, List<ClamdConfEntry>> _byName;

    internal ClamdConf(string? filePath, List<ClamdConfEntry> entries, List<PlanDiagnostic> diagnostics)
    {
        FilePath = filePath;
        Entries = entries;
        Diagnostics = diagnostics;
        _byName = new Dictionary<string, List<ClamdConfEntry>>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (!_byName.TryGetValue(entry.Directive, out var list))
            {
                _byName[entry.Directive] = list = [];
            }

            list.Add(entry);
        }
    }

    /// <summary>The file that was read, or <see langword="null"/> for text.</summary>
    public string? FilePath { get; }

    /// <summary>Every directive that takes effect, in file order (a repeated single-valued directive appears once: its first value).</summary>
    public IReadOnlyList<ClamdConfEntry> Entries { get; }

    /// <summary>What the reader noticed: repeated directives, octal-looking sizes, deprecated directives, CRLF endings.</summary>
    public IReadOnlyList<PlanDiagnostic> Diagnostics { get; }

    /// <summary><c>LocalSocket</c>: clamd's unix socket path, or <see langword="null"/>.</summary>
    public string? LocalSocket => GetValue(ClamdDirectiveNames.LocalSocket);

    /// <summary><c>TCPSocket</c>: clamd's TCP port, or <see langword="null"/>.</summary>
    public int? TcpSocket => GetValue(ClamdDirectiveNames.TcpSocket) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : null;

    /// <summary><c>TCPAddr</c>: the addresses clamd listens on, in file order.</summary>
    public IReadOnlyList<string> TcpAddresses => GetValues(ClamdDirectiveNames.TcpAddr);

    /// <summary><c>StreamMaxLength</c> in bytes (default 100 MiB).</summary>
    public long StreamMaxLength =>
        GetValue(ClamdDirectiveNames.StreamMaxLength) is { } v && ClamdValueSyntax.TryParseSize(v, out var size, out _) ? size : DefaultStreamMaxLength;

    /// <summary><c>TemporaryDirectory</c>, or <see langword="null"/>.</summary>
    public string? TemporaryDirectory => GetValue(ClamdDirectiveNames.TemporaryDirectory);

    /// <summary>Reads a clamd.conf from disk.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The parsed configuration.</returns>
    /// <exception cref="ClamdConfException">The file cannot be read or is not valid clamd.conf.</exception>
    public static ClamdConf Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            // Read as a short text file: a device (/dev/zero), a FIFO (whose open would wait) or a huge file is refused
            // before it is read, never read to its end.
            if (!IsRegularFile(path))
            {
                throw new ClamdConfException(path, null, null, "this is not a regular file (a directory, device, FIFO or socket): a clamd.conf is a text file.");
            }

            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0, FileOptions.None);
            bytes = new byte[MaxFileSize + 1];
            var read = 0;
            int n;
            while (read < bytes.Length && (n = file.Read(bytes, read, bytes.Length - read)) > 0)
            {
                read += n;
            }

            if (read > MaxFileSize)
            {
                throw new ClamdConfException(path, null, null, $"the file is larger than {MaxFileSize / 1024} KiB: a clamd.conf is a short text file (is this the right file?).");
            }

            Array.Resize(ref bytes, read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new ClamdConfException(path, null, null, $"the file cannot be read ({e.Message}).", e);
        }

        return Parse(bytes, path);
    }

    /// <summary>The largest clamd.conf read (ClamAV's own sample is 30 KiB).</summary>
    internal const int MaxFileSize = 1024 * 1024;

    /// <summary>Whether the path (links followed) is a regular file; a missing one is left to the open to report.</summary>
    private static bool IsRegularFile(string path) =>
        Interop.Libc.GetFileType(path, followLinks: true, out _) is null or Interop.Libc.S_IFREG;

    /// <summary>Parses clamd.conf bytes (UTF-8; a byte-order mark is allowed).</summary>
    /// <param name="utf8">The file's bytes.</param>
    /// <param name="filePath">The name to report in diagnostics and errors.</param>
    /// <returns>The parsed configuration.</returns>
    /// <exception cref="ClamdConfException">The text is not valid clamd.conf.</exception>
    public static ClamdConf Parse(ReadOnlySpan<byte> utf8, string? filePath = null)
    {
        if (utf8.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            utf8 = utf8[3..];
        }

        var text = new StringBuilder(utf8.Length);
        var line = 1;
        while (!utf8.IsEmpty)
        {
            var end = utf8.IndexOf((byte)'\n');
            var lineBytes = end < 0 ? utf8 : utf8[..(end + 1)];
            if (lineBytes.IndexOf((byte)0) >= 0)
            {
                throw new ClamdConfException(filePath, line, null, "the line holds a NUL byte: this is not a text file (is this the right file?).");
            }

            try
            {
                text.Append(StrictUtf8.GetString(lineBytes));
            }
            catch (DecoderFallbackException e)
            {
                throw new ClamdConfException(filePath, line, null, "the line is not valid UTF-8 text.", e);
            }

            utf8 = utf8[lineBytes.Length..];
            line++;
        }

        return Parse(text.ToString(), filePath);
    }

    /// <summary>Parses clamd.conf text.</summary>
    /// <param name="text">The text.</param>
    /// <param name="filePath">The name to report in diagnostics and errors.</param>
    /// <returns>The parsed configuration.</returns>
    /// <exception cref="ClamdConfException">The text is not valid clamd.conf.</exception>
    public static ClamdConf Parse(string text, string? filePath = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new ClamdConfReader(filePath).Read(text);
    }

    /// <summary>The effective value of a single-valued directive (its first occurrence), or <see langword="null"/>.</summary>
    /// <param name="directive">The directive's name, case-sensitive.</param>
    /// <returns>The value without quotes, or <see langword="null"/> when the directive is absent.</returns>
    public string? GetValue(string directive) =>
        _byName.TryGetValue(directive, out var list) ? list[0].Value : null;

    /// <summary>Every value of a directive, in file order.</summary>
    /// <param name="directive">The directive's name, case-sensitive.</param>
    /// <returns>The values; empty when absent.</returns>
    public IReadOnlyList<string> GetValues(string directive) =>
        _byName.TryGetValue(directive, out var list) ? list.ConvertAll(e => e.Value) : [];

    /// <summary>Builds the on-access options this file describes (a new instance on each call).</summary>
    /// <returns>The options, with ClamAV's defaults for absent directives.</returns>
    public OnAccessOptions ToOnAccessOptions()
    {
        var options = new OnAccessOptions();
        if (GetValue(ClamdDirectiveNames.ScanOnAccess) is { } scan)
        {
            options.ScanOnAccess = Bool(scan);
        }

        options.MountPaths = [.. GetValues(ClamdDirectiveNames.MountPath)];
        options.IncludePaths = [.. GetValues(ClamdDirectiveNames.IncludePath)];
        options.ExcludePaths = [.. GetValues(ClamdDirectiveNames.ExcludePath)];
        options.ExcludeUids = [.. GetValues(ClamdDirectiveNames.ExcludeUid).Select(v => uint.Parse(v, CultureInfo.InvariantCulture))];
        options.ExcludeUnames = [.. GetValues(ClamdDirectiveNames.ExcludeUname)];
        options.ExcludeRootUid = GetValue(ClamdDirectiveNames.ExcludeRootUid) is { } root && Bool(root);
        if (GetValue(ClamdDirectiveNames.MaxFileSize) is { } size && ClamdValueSyntax.TryParseSize(size, out var bytes, out _))
        {
            options.MaxFileSize = bytes;
        }

        if (GetValue(ClamdDirectiveNames.MaxThreads) is { } threads)
        {
            options.MaxThreads = int.Parse(threads, CultureInfo.InvariantCulture);
        }

        if (GetValue(ClamdDirectiveNames.RetryAttempts) is { } retries)
        {
            options.RetryAttempts = int.Parse(retries, CultureInfo.InvariantCulture);
        }

        if (GetValue(ClamdDirectiveNames.CurlTimeout) is { } timeout)
        {
            options.ScanTimeout = TimeSpan.FromMilliseconds(int.Parse(timeout, CultureInfo.InvariantCulture));
        }

        options.DenyOnError = GetValue(ClamdDirectiveNames.DenyOnError) is { } deny && Bool(deny);
        options.DisableDdd = GetValue(ClamdDirectiveNames.DisableDdd) is { } ddd && Bool(ddd);
        options.Prevention = GetValue(ClamdDirectiveNames.Prevention) is { } prevention && Bool(prevention);
        options.ExtraScanning = GetValue(ClamdDirectiveNames.ExtraScanning) is { } extra && Bool(extra);
        return options;

        static bool Bool(string value) => ClamdValueSyntax.TryParseBool(value, out var b) && b;
    }

    /// <summary>Writes on-access options as clamd.conf text that <see cref="Parse(string, string?)"/> reads back to equal options.</summary>
    /// <param name="options">The options.</param>
    /// <returns>clamd.conf text, one directive per line.</returns>
    /// <exception cref="ArgumentException">A value has no clamd.conf spelling (an empty path, a line break, a negative number, a timeout that is not whole milliseconds).</exception>
    public static string Format(OnAccessOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var text = new StringBuilder();
        if (options.ScanOnAccess is { } scan)
        {
            Line(ClamdDirectiveNames.ScanOnAccess, ClamdValueSyntax.FormatBool(scan));
        }

        foreach (var p in options.MountPaths)
        {
            Line(ClamdDirectiveNames.MountPath, Quote(ClamdDirectiveNames.MountPath, p));
        }

        foreach (var p in options.IncludePaths)
        {
            Line(ClamdDirectiveNames.IncludePath, Quote(ClamdDirectiveNames.IncludePath, p));
        }

        foreach (var p in options.ExcludePaths)
        {
            Line(ClamdDirectiveNames.ExcludePath, Quote(ClamdDirectiveNames.ExcludePath, p));
        }

        foreach (var uid in options.ExcludeUids)
        {
            if (uid > MaxUid)
            {
                throw new ArgumentException($"{ClamdDirectiveNames.ExcludeUid} {uid} is not a valid UID.", nameof(options));
            }

            Line(ClamdDirectiveNames.ExcludeUid, uid.ToString(CultureInfo.InvariantCulture));
        }

        foreach (var name in options.ExcludeUnames)
        {
            Line(ClamdDirectiveNames.ExcludeUname, Quote(ClamdDirectiveNames.ExcludeUname, name));
        }

        Line(ClamdDirectiveNames.ExcludeRootUid, ClamdValueSyntax.FormatBool(options.ExcludeRootUid));
        Line(ClamdDirectiveNames.MaxFileSize, ClamdValueSyntax.FormatSize(NonNegative(ClamdDirectiveNames.MaxFileSize, options.MaxFileSize)));
        Line(ClamdDirectiveNames.MaxThreads, NonNegative(ClamdDirectiveNames.MaxThreads, options.MaxThreads).ToString(CultureInfo.InvariantCulture));
        Line(ClamdDirectiveNames.RetryAttempts, NonNegative(ClamdDirectiveNames.RetryAttempts, options.RetryAttempts).ToString(CultureInfo.InvariantCulture));
        Line(ClamdDirectiveNames.CurlTimeout, Milliseconds(options.ScanTimeout).ToString(CultureInfo.InvariantCulture));
        Line(ClamdDirectiveNames.DenyOnError, ClamdValueSyntax.FormatBool(options.DenyOnError));
        Line(ClamdDirectiveNames.DisableDdd, ClamdValueSyntax.FormatBool(options.DisableDdd));
        Line(ClamdDirectiveNames.Prevention, ClamdValueSyntax.FormatBool(options.Prevention));
        Line(ClamdDirectiveNames.ExtraScanning, ClamdValueSyntax.FormatBool(options.ExtraScanning));
        return text.ToString();

        void Line(string directive, string value) => text.Append(directive).Append(' ').Append(value).Append('\n');

        static long NonNegative(string directive, long value) => value >= 0
            ? value
            : throw new ArgumentException($"{directive} cannot be negative in clamd.conf (it is {value}).", nameof(options));

        static long Milliseconds(TimeSpan timeout)
        {
            if (timeout.Ticks % TimeSpan.TicksPerMillisecond != 0 || timeout < TimeSpan.Zero || timeout.TotalMilliseconds > int.MaxValue)
            {
                throw new ArgumentException($"{ClamdDirectiveNames.CurlTimeout} must be whole milliseconds from 0 to {int.MaxValue} (it is {timeout}).", nameof(options));
            }

            return (long)timeout.TotalMilliseconds;
        }

        static string Quote(string directive, string value)
        {
            if (value.Length == 0 || value.AsSpan().IndexOfAny('\r', '\n') >= 0)
            {
                throw new ArgumentException($"{directive} cannot be written to clamd.conf: the value is empty or contains a line break.", nameof(options));
            }

            var needsQuotes = value[0] is ' ' or '\t' or '"' || value[^1] is ' ' or '\t';
            return needsQuotes ? "\"" + value + "\"" : value;
        }
    }

    internal const uint MaxUid = uint.MaxValue - 1;

    /// <summary>The line a directive (with a given raw value, if any) was read from.</summary>
    internal int? FindLine(string directive, string? value = null)
    {
        if (!_byName.TryGetValue(directive, out var list))
        {
            return null;
        }

        foreach (var entry in list)
        {
            if (value is null || string.Equals(entry.Value, value, StringComparison.Ordinal))
            {
                return entry.Line;
            }
        }

        return null;
    }

    /// <summary>The scanner's own directories, named here: its TemporaryDirectory and DatabaseDirectory.</summary>
    internal List<(string Directive, string Path)> ScannerDirectories()
    {
        var found = new List<(string, string)>();
        foreach (var directive in new[] { ClamdDirectiveNames.TemporaryDirectory, ClamdDirectiveNames.DatabaseDirectory })
        {
            if (GetValue(directive) is { } raw && PathNormalizer.TryNormalize(raw, out var path))
            {
                found.Add((directive, path));
            }
        }

        return found;
    }
}
