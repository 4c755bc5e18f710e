using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace OnAccess.ClamAV;

/// <summary>
/// An in-process scanner for ClamAV hash signatures: no daemon. A file is hashed (streamed from the descriptor it is
/// given, with pooled buffers) only when some signature has its size, and only with the algorithms those signatures
/// use. Signature files are re-read when they change, and <see cref="Generation"/> then increases.
/// </summary>
public sealed partial class HashDatabaseScanner : IScanner, ISignatureGeneration
{
    /// <summary>The EICAR test string.</summary>
    public const string EicarTestString = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

    private const int BufferSize = 64 * 1024;

    /// <summary>The MD5 of the EICAR test string as a file holds it: alone, with a line feed, with CR LF.</summary>
    private static readonly (string Md5, string Ending)[] EicarHashes =
    [
        ("44d88612fea8a8f36de82e1278abb02f", ""),
        ("69630e4574ec6798239b091cda43dca0", "\n"),
        ("e7e5fa40569514ec442bbdf755d89c2f", "\r\n"),
    ];

    private readonly HashDatabaseScannerOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _reloadGate = new();
    private volatile Database _database;
    private long _nextCheck;
    private long _generation;
    private long _bytesHashed;

    /// <summary>Loads the signature files.</summary>
    /// <param name="options">The files, and whether EICAR is built in.</param>
    /// <param name="logger">Where load errors are reported.</param>
    public HashDatabaseScanner(HashDatabaseScannerOptions? options = null, ILogger<HashDatabaseScanner>? logger = null)
    {
        _options = options ?? new HashDatabaseScannerOptions();
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _database = Load();
        _generation = 1;
    }

    /// <summary>
    /// Increases each time the signatures are reloaded, so cached verdicts can be dropped. Reading it also checks
    /// the files for changes (at most once per <see cref="HashDatabaseScannerOptions.ReloadCheckInterval"/>), so a
    /// changed file is picked up even while every open is answered from the cache.
    /// </summary>
    public long Generation
    {
        get
        {
            ReloadIfChanged();
            return Interlocked.Read(ref _generation);
        }
    }

    /// <summary>How many signatures are loaded.</summary>
    public int SignatureCount => _database.Count;

    /// <summary>The problems found by the last load.</summary>
    public IReadOnlyList<SignatureLoadError> LoadErrors => _database.Errors;

    internal long BytesHashed => Interlocked.Read(ref _bytesHashed);

    /// <inheritdoc />
    public async ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ReloadIfChanged();
        var database = _database;
        var size = request.Size > 0 ? request.Size : RandomAccess.GetLength(request.File);
        var wanted = database.AlgorithmsFor(size);
        if (wanted == Algorithms.None)
        {
            return ScanResult.Clean; // no signature has this size: nothing to read
        }

        using var md5 = (wanted & Algorithms.Md5) != 0 ? IncrementalHash.CreateHash(HashAlgorithmName.MD5) : null;
        using var sha1 = (wanted & Algorithms.Sha1) != 0 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA1) : null;
        using var sha256 = (wanted & Algorithms.Sha256) != 0 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            // At most the size the file had when it was accessed: one that keeps growing is not read to its end.
            long offset = 0;
            while (offset < size)
            {
                var n = await RandomAccess.ReadAsync(request.File, buffer.AsMemory(0, (int)Math.Min(BufferSize, size - offset)), offset, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                md5?.AppendData(buffer, 0, n);
                sha1?.AppendData(buffer, 0, n);
                sha256?.AppendData(buffer, 0, n);
                offset += n;
            }

            Interlocked.Add(ref _bytesHashed, offset);
            if (database.Match(offset, md5, sha1, sha256) is { } name)
            {
                return ScanResult.Infected(name);
            }

            return offset == size && RandomAccess.Read(request.File, buffer.AsSpan(0, 1), offset) > 0
                ? ScanResult.Skipped($"the file grew past the {size} bytes it had when it was opened while it was read: what was added was not scanned")
                : ScanResult.Clean;
        }
        catch (IOException e)
        {
            return ScanResult.Error($"reading the file failed: {e.Message}");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Re-reads every signature file now and increases <see cref="Generation"/>.</summary>
    public void Reload()
    {
        lock (_reloadGate)
        {
            _database = Load();
            Interlocked.Increment(ref _generation);
        }
    }

    private void ReloadIfChanged()
    {
        var now = Environment.TickCount64;
        var next = Interlocked.Read(ref _nextCheck);
        if (now < next || Interlocked.CompareExchange(ref _nextCheck, now + (long)_options.ReloadCheckInterval.TotalMilliseconds, next) != next)
        {
            return;
        }

        if (_database.Stamps.Any(s => Stamp(s.Key) != s.Value))
        {
            Reload();
        }
    }

    private static (DateTime, long) Stamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : (DateTime.MinValue, -1);
    }

    private Database Load()
    {
        var database = new Database();
        if (_options.IncludeEicar)
        {
            // Written out, not computed: hashing here would load the system's crypto library at start (about 3.5 MiB
            // of RSS) in a process whose files may never have a signature's size.
            foreach (var (hash, ending) in EicarHashes)
            {
                database.Add(Algorithms.Md5, hash, EicarTestString.Length + ending.Length, "Eicar-Test-Signature");
            }
        }

        foreach (var path in _options.SignatureFiles)
        {
            database.Stamps[path] = Stamp(path);
            string[] lines;
            try
            {
                lines = File.ReadAllLines(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                database.Errors.Add(new SignatureLoadError(path, 0, $"cannot read the file: {e.Message}"));
                continue;
            }

            for (var i = 0; i < lines.Length; i++)
            {
                var line = lines[i].Trim();
                if (line.Length == 0 || line[0] == '#')
                {
                    continue;
                }

                if (ParseLine(line, out var signature) is { } error)
                {
                    database.Errors.Add(new SignatureLoadError(path, i + 1, error));
                    continue;
                }

                database.Add(signature.Algorithm, signature.Hash, signature.Size, signature.Name);
            }
        }

        foreach (var error in database.Errors)
        {
            LogLoadError(_logger, error.FilePath, error.Line, error.Message);
        }

        return database;
    }

    /// <summary>Reads one <c>hash:size:name[:...]</c> line; returns what is wrong, or null with the signature.</summary>
    private static string? ParseLine(string line, out Signature signature)
    {
        signature = default;
        var parts = line.Split(':');
        if (parts.Length < 3)
        {
            return "expected hash:size:name";
        }

        var algorithm = parts[0].Length switch { 32 => Algorithms.Md5, 40 => Algorithms.Sha1, 64 => Algorithms.Sha256, _ => Algorithms.None };
        if (algorithm == Algorithms.None || !parts[0].All(char.IsAsciiHexDigit))
        {
            return $"'{parts[0]}' is not an MD5, SHA-1 or SHA-256 in hexadecimal";
        }

        long size = -1;
        if (parts[1] != "*" && (!long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out size) || size < 0))
        {
            return $"'{parts[1]}' is not a size (digits, or * for any size)";
        }

        if (parts[2].Length == 0)
        {
            return "the signature has no name";
        }

        signature = new Signature(algorithm, parts[0].ToLowerInvariant(), size, parts[2]);
        return null;
    }

    private readonly record struct Signature(Algorithms Algorithm, string Hash, long Size, string Name);

    [LoggerMessage(EventId = 400, Level = LogLevel.Warning, Message = "Signature file {Path}:{Line}: {Problem}; the line is skipped")]
    private static partial void LogLoadError(ILogger logger, string path, int line, string problem);

    [Flags]
    private enum Algorithms
    {
        None = 0,
        Md5 = 1,
        Sha1 = 2,
        Sha256 = 4,
    }

    private sealed class Database
    {
        private readonly Dictionary<(Algorithms, string, long), string> _byHash = [];
        private readonly Dictionary<long, Algorithms> _sizes = [];
        private Algorithms _anySize;

        public Dictionary<string, (DateTime, long)> Stamps { get; } = new(StringComparer.Ordinal);

        public List<SignatureLoadError> Errors { get; } = [];

        public int Count => _byHash.Count;

        public void Add(Algorithms algorithm, string hash, long size, string name)
        {
            _byHash.TryAdd((algorithm, hash, size), name);
            if (size < 0)
            {
                _anySize |= algorithm;
            }
            else
            {
                _sizes[size] = _sizes.GetValueOrDefault(size) | algorithm;
            }
        }

        public Algorithms AlgorithmsFor(long size) => _sizes.GetValueOrDefault(size) | _anySize;

        public string? Match(long size, IncrementalHash? md5, IncrementalHash? sha1, IncrementalHash? sha256)
        {
            foreach (var (algorithm, hash) in new[] { (Algorithms.Md5, md5), (Algorithms.Sha1, sha1), (Algorithms.Sha256, sha256) })
            {
                if (hash is null)
                {
                    continue;
                }

                var hex = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (_byHash.TryGetValue((algorithm, hex, size), out var name) || _byHash.TryGetValue((algorithm, hex, -1), out name))
                {
                    return name;
                }
            }

            return null;
        }
    }
}
