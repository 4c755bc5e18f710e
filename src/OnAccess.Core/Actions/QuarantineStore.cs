using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using OnAccess.Kernel;
using OnAccess.Text;

namespace OnAccess;

/// <summary>
/// A quarantine a person can manage: a directory of this user's that no one else can enter (created 0700), holding for
/// each entry <c>ID.data</c> (the content, 0400: never executable, unreadable to others) and <c>ID.json</c> (0600: the
/// original path, owner, mode and size, who accessed it, the threat, the content's SHA-256, the time, the action). The
/// content stored is read from the scanned file's own descriptor, written beside its final name, synced, then renamed
/// into place, so an entry is whole or absent; any failure (a full disk) removes what was begun and leaves the original
/// where it was. Everything is done relative to the directory's descriptor, opened once.
/// </summary>
public sealed class QuarantineStore : IDisposable
{
    private const int ChunkSize = 64 * 1024;
    private readonly SafeDescriptorHandle _directory;

    /// <summary>Opens (or creates) the quarantine at <paramref name="directory"/>.</summary>
    /// <param name="directory">An absolute path.</param>
    /// <param name="create">Whether to create it (0700) when it does not exist; otherwise that is an error.</param>
    /// <exception cref="IOException">It cannot be created or opened, is a link, or is not private to this user.</exception>
    public QuarantineStore(string directory, bool create = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!System.IO.Path.IsPathFullyQualified(directory))
        {
            throw new ArgumentException($"The quarantine directory must be an absolute path: {directory}.", nameof(directory));
        }

        Path = directory.TrimEnd('/');
        if (create && !System.IO.Directory.Exists(Path) && OperatingSystem.IsLinux())
        {
            System.IO.Directory.CreateDirectory(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        _directory = Descriptors.OpenDirectory(Path, out var errno)
            ?? throw new IOException($"The quarantine {Path} cannot be opened as a directory (a link is not followed): {Why(errno)}.");
        var (uid, _, mode) = Owner(_directory);
        if (uid != global::Interop.Libc.GetEuid() || (mode & 0b111_111) != 0)
        {
            _directory.Dispose();
            throw new IOException($"The quarantine {Path} must be a directory of this user's that no one else can enter (0700); it is {Convert.ToString(mode & 0xFFF, 8)} and owned by user {uid}.");
        }
    }

    /// <summary>The quarantine directory.</summary>
    public string Path { get; }

    /// <summary>
    /// Stores what was scanned of <paramref name="detection"/>'s file (its first <see cref="Detection.Size"/> bytes, read
    /// from its descriptor: a file grown since is not copied without end) and, for a move, then removes the original
    /// only if its path still names the file that was scanned, through the same mount. The record is written before the
    /// original goes, and again after.
    /// </summary>
    /// <param name="detection">The infected file.</param>
    /// <param name="mode">Move or copy.</param>
    /// <param name="cancellationToken">Stops the copy (nothing is kept).</param>
    /// <returns>The entry (its <see cref="QuarantineEntry.OriginalRemoved"/> and detail say what became of the original).</returns>
    /// <exception cref="IOException">The content could not be stored (no space, say); nothing was kept and the original was not touched.</exception>
    public QuarantineEntry Add(Detection detection, QuarantineMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(detection);
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var part = Encoding.ASCII.GetBytes(id + ".part");
        string sha256;
        long size;
        using (var stored = OriginalFile.CreateNew(_directory, part, out var errno) ?? throw new IOException($"the quarantine cannot take a new file: {Why(errno)}"))
        {
            try
            {
                (sha256, size) = Copy(detection.File, stored, detection.Size, cancellationToken);
                Check(global::Interop.Libc.FChmod(stored, 0b100_000_000), "fchmod");
                Check(global::Interop.Libc.FSync(stored), "fsync");
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                OriginalFile.Unlink(_directory, part);
                throw new IOException($"the content could not be stored in the quarantine ({e.Message}); nothing was kept, and the original was not touched", e);
            }
        }

        Check(OriginalFile.Rename(_directory, part, Name(id, "data")) ? 0 : -1, "rename");
        var (uid, gid, fileMode) = Owner(detection.File);
        var verified = OriginalFile.Check(detection, out var unverified);
        var entry = new QuarantineEntry(id, detection.Path ?? string.Empty, detection.RawPath ?? [], uid, gid, fileMode, size, sha256, detection.ThreatName, detection.ProcessId, detection.UserId, detection.Time, mode == QuarantineMode.Move ? "move" : "copy", OriginalRemoved: false, mode == QuarantineMode.Move ? "stored; the original is being removed" : "copied; the original stays", verified);
        if (!verified)
        {
            entry = entry with { Detail = (mode == QuarantineMode.Move ? "stored, but the original was not removed: " : "copied, but ") + unverified };
        }

        WriteRecord(entry); // before the original goes: an entry whose original is gone always has its record
        if (mode == QuarantineMode.Move && verified)
        {
            entry = Remove(detection, out var why, out _)
                ? entry with { OriginalRemoved = true, Detail = "moved; the original was removed" }
                : entry with { Detail = "stored, but the original was not removed: " + why };
            WriteRecord(entry);
        }

        return entry;
    }

    /// <summary>Every entry, oldest first (files without their record, left by a crash, are not entries).</summary>
    /// <returns>The entries.</returns>
    /// <exception cref="InvalidDataException">A record cannot be read (its id is named).</exception>
    public IReadOnlyList<QuarantineEntry> List() =>
        [.. System.IO.Directory.EnumerateFiles(Descriptors.ProcPath(_directory), "*.json")
            .Select(f => System.IO.Path.GetFileNameWithoutExtension(f))
            .Where(IsId)
            .Select(Read)
            .OrderBy(e => e.Time)];

    private QuarantineEntry Read(string id)
    {
        try
        {
            return ReadRecord(id);
        }
        catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"The quarantine record {id}.json cannot be read: {e.Message}", e);
        }
    }

    /// <summary>The entry <paramref name="id"/>.</summary>
    /// <param name="id">Its id.</param>
    /// <returns>The entry.</returns>
    /// <exception cref="KeyNotFoundException">There is no such entry.</exception>
    public QuarantineEntry Get(string id) => IsId(id) && File.Exists(RecordPath(id)) ? Read(id) : throw new KeyNotFoundException($"The quarantine {Path} has no entry {DisplayText.Escape(id)}.");

    /// <summary>
    /// Puts the content back where it was (or at <paramref name="to"/>), with its owner and mode (permission bits;
    /// set-user-ID and set-group-ID are not restored), never over an existing file and never through a link: it is
    /// written under a temporary name beside the target and renamed into place only when whole. Then the entry goes. An
    /// entry whose recorded path was not verified to name the file (read through another mount namespace, say) is put
    /// back only at an explicit <paramref name="to"/>.
    /// </summary>
    /// <param name="id">The entry.</param>
    /// <param name="to">Where to put it instead of its recorded path (an absolute path).</param>
    /// <returns>The entry restored.</returns>
    /// <exception cref="IOException">The target exists, its directory is gone, or the recorded path is not trusted: nothing was written.</exception>
    public QuarantineEntry Restore(string id, string? to = null)
    {
        var entry = Get(id);
        if (to is null && !entry.PathVerified)
        {
            throw new IOException($"refused: the recorded path {DisplayText.Escape(entry.OriginalRawPath)} was not shown to name the file when it was quarantined ({DisplayText.Escape(entry.Detail)}); restore it to a path you choose (--to PATH)");
        }

        var target = to is null ? entry.OriginalRawPath : Encoding.UTF8.GetBytes(System.IO.Path.GetFullPath(to));
        using var parent = OriginalFile.OpenParent(target, out var name, out var failure)
            ?? throw new IOException($"cannot restore to {DisplayText.Escape(target)}: {failure}");
        var temporary = Encoding.ASCII.GetBytes($".onaccess-restore-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}");
        using (var written = OriginalFile.CreateNew(parent, temporary, out var errno) ?? throw new IOException($"cannot restore to {DisplayText.Escape(target)}: {Why(errno)}"))
        {
            try
            {
                using (var content = File.OpenHandle(DataPath(id), FileMode.Open, FileAccess.Read))
                {
                    Copy(content, written, long.MaxValue, CancellationToken.None);
                }

                Check(global::Interop.Libc.FChown(written, entry.Uid, entry.Gid), "fchown");
                Check(global::Interop.Libc.FChmod(written, entry.Mode & 0b111_111_111), "fchmod");
                Check(global::Interop.Libc.FSync(written), "fsync");
            }
            catch (IOException)
            {
                OriginalFile.Unlink(parent, temporary);
                throw;
            }
        }

        if (!OriginalFile.Rename(parent, temporary, name))
        {
            var error = Marshal.GetLastPInvokeError();
            OriginalFile.Unlink(parent, temporary);
            throw new IOException(error == global::Interop.Errno.EEXIST
                ? $"refused: {DisplayText.Escape(target)} exists, and restoring would overwrite it"
                : $"cannot restore to {DisplayText.Escape(target)}: {Why(error)}");
        }

        Delete(id);
        return entry;
    }

    /// <summary>Deletes the entry (its record first, so a crash leaves no entry without content).</summary>
    /// <param name="id">The entry.</param>
    /// <exception cref="KeyNotFoundException">There is no such entry.</exception>
    public void Delete(string id)
    {
        if (!IsId(id) || !OriginalFile.Unlink(_directory, Name(id, "json")))
        {
            throw new KeyNotFoundException($"The quarantine {Path} has no entry {DisplayText.Escape(id)}.");
        }

        OriginalFile.Unlink(_directory, Name(id, "data"));
    }

    /// <summary>Closes the quarantine directory.</summary>
    public void Dispose() => _directory.Dispose();

    /// <summary>Removes the original if its path still names the scanned file through the same mount (<see cref="OriginalFile.RemoveIfSame"/>).</summary>
    /// <param name="detection">The file.</param>
    /// <param name="why">Why not, when not.</param>
    /// <param name="swapped">Whether it was not because the path names something else now (or nothing).</param>
    internal static bool Remove(Detection detection, out string why, out bool swapped)
    {
        swapped = false;
        if (detection.RawPath is not { } raw)
        {
            why = "its path is not known";
            return false;
        }

        using var parent = OriginalFile.OpenParent(raw, out var name, out var failure);
        if (parent is null)
        {
            why = failure!;
            swapped = true; // a directory on the way is gone or was replaced by a link
            return false;
        }

        var refused = OriginalFile.RemoveIfSame(parent, name, new InodeId(detection.Device, detection.Inode), detection.MountId);
        why = refused?.Reason ?? string.Empty;
        swapped = refused?.Swapped ?? false;
        return refused is null;
    }

    private static bool IsId(string id) => id.Length == 32 && id.All(char.IsAsciiHexDigitLower);

    private static byte[] Name(string id, string kind) => Encoding.ASCII.GetBytes($"{id}.{kind}");

    private string RecordPath(string id) => System.IO.Path.Combine(Descriptors.ProcPath(_directory), id + ".json");

    private string DataPath(string id) => System.IO.Path.Combine(Descriptors.ProcPath(_directory), id + ".data");

    /// <summary>Copies at most <paramref name="limit"/> bytes, checking <paramref name="cancellationToken"/> between chunks.</summary>
    private static (string Sha256, long Size) Copy(SafeFileHandle from, SafeFileHandle to, long limit, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[ChunkSize];
        long offset = 0;
        int n;
        while (offset < limit && (n = RandomAccess.Read(from, buffer.AsSpan(0, (int)Math.Min(ChunkSize, limit - offset)), offset)) > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            RandomAccess.Write(to, buffer.AsSpan(0, n), offset);
            hash.AppendData(buffer, 0, n);
            offset += n;
        }

        return (Convert.ToHexStringLower(hash.GetHashAndReset()), offset);
    }

    private static unsafe (uint Uid, uint Gid, uint Mode) Owner(SafeHandle file)
    {
        global::Interop.Libc.Statx statx;
        byte empty = 0;
        return global::Interop.Libc.StatxAt(file, &empty, global::Interop.Libc.AT_EMPTY_PATH, 0x0002 | 0x0008 | 0x0010 | 0x0001 /* MODE, UID, GID, TYPE */, &statx) == 0
            ? (statx.Uid, statx.Gid, (uint)(statx.Mode & 0xFFF))
            : (0, 0, 0);
    }

    private static void Check(int result, string operation)
    {
        if (result != 0)
        {
            throw new IOException($"{operation}: {Why(Marshal.GetLastPInvokeError())}");
        }
    }

    private void WriteRecord(QuarantineEntry e)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            e.WriteTo(w);
        }

        var part = Name(e.Id, "json.part");
        using (var record = OriginalFile.CreateNew(_directory, part, out var errno) ?? throw new IOException($"the quarantine cannot take the record of {e.Id}: {Why(errno)}"))
        {
            try
            {
                RandomAccess.Write(record, stream.ToArray(), 0);
                Check(global::Interop.Libc.FSync(record), "fsync");
            }
            catch (IOException)
            {
                OriginalFile.Unlink(_directory, part);
                throw;
            }
        }

        Check(OriginalFile.Replace(_directory, part, Name(e.Id, "json")) ? 0 : -1, "rename");
        Check(global::Interop.Libc.FSync(_directory), "fsync");
    }

    private QuarantineEntry ReadRecord(string id)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(RecordPath(id)));
        var r = document.RootElement;
        return new QuarantineEntry(
            id,
            r.GetProperty("originalPath").GetString()!,
            r.GetProperty("originalPathBytes").GetBytesFromBase64(),
            r.GetProperty("uid").GetUInt32(),
            r.GetProperty("gid").GetUInt32(),
            Convert.ToUInt32(r.GetProperty("mode").GetString(), 8),
            r.GetProperty("size").GetInt64(),
            r.GetProperty("sha256").GetString()!,
            r.GetProperty("threat").GetString()!,
            r.GetProperty("accessorPid").GetInt32(),
            r.GetProperty("accessorUid").ValueKind == JsonValueKind.Null ? null : r.GetProperty("accessorUid").GetUInt32(),
            r.GetProperty("time").GetDateTimeOffset(),
            r.GetProperty("action").GetString()!,
            r.GetProperty("originalRemoved").GetBoolean(),
            r.GetProperty("detail").GetString()!,
            r.GetProperty("pathVerified").GetBoolean());
    }

    private static string Why(int errno) => global::Interop.ErrorInfo.FromErrno(errno).Message;
}
