using System.Text.Json;

namespace OnAccess;

/// <summary>One file in a <see cref="QuarantineStore"/>, as its metadata record says.</summary>
/// <param name="Id">The entry's id (32 hexadecimal digits).</param>
/// <param name="OriginalPath">Where the file was (U+FFFD for bytes that are not UTF-8).</param>
/// <param name="OriginalRawPath">The same path as the kernel's bytes.</param>
/// <param name="Uid">The file's owner.</param>
/// <param name="Gid">The file's group.</param>
/// <param name="Mode">The file's mode (permission bits).</param>
/// <param name="Size">Its size in bytes.</param>
/// <param name="Sha256">The SHA-256 of the content stored, in lowercase hexadecimal.</param>
/// <param name="Threat">What was found.</param>
/// <param name="AccessorPid">The process whose access found it.</param>
/// <param name="AccessorUid">That process's user, when known.</param>
/// <param name="Time">When it was quarantined.</param>
/// <param name="Action"><c>move</c> or <c>copy</c>.</param>
/// <param name="OriginalRemoved">Whether the original was removed (a move whose path was swapped leaves it: see <paramref name="Detail"/>).</param>
/// <param name="Detail">What happened to the original.</param>
/// <param name="PathVerified">Whether the recorded path was shown to name the file when it was quarantined (restore puts an unverified one back only where told).</param>
public sealed record QuarantineEntry(
    string Id,
    string OriginalPath,
    byte[] OriginalRawPath,
    uint Uid,
    uint Gid,
    uint Mode,
    long Size,
    string Sha256,
    string Threat,
    int AccessorPid,
    uint? AccessorUid,
    DateTimeOffset Time,
    string Action,
    bool OriginalRemoved,
    string Detail,
    bool PathVerified)
{
    /// <summary>
    /// Writes the entry as one JSON object, the form of its record in the store (<c>ID.json</c>, see
    /// docs/operations.md): <c>originalPathBytes</c> is the path's bytes in base64, <c>mode</c> four octal digits,
    /// <c>accessorUid</c> null when unknown.
    /// </summary>
    /// <param name="writer">Where the object goes.</param>
    public void WriteTo(Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStartObject();
        writer.WriteString("id", Id);
        writer.WriteString("originalPath", OriginalPath);
        writer.WriteBase64String("originalPathBytes", OriginalRawPath);
        writer.WriteNumber("uid", Uid);
        writer.WriteNumber("gid", Gid);
        writer.WriteString("mode", Convert.ToString(Mode, 8).PadLeft(4, '0'));
        writer.WriteNumber("size", Size);
        writer.WriteString("sha256", Sha256);
        writer.WriteString("threat", Threat);
        writer.WriteNumber("accessorPid", AccessorPid);
        if (AccessorUid is { } accessor)
        {
            writer.WriteNumber("accessorUid", accessor);
        }
        else
        {
            writer.WriteNull("accessorUid");
        }

        writer.WriteString("time", Time);
        writer.WriteString("action", Action);
        writer.WriteBoolean("originalRemoved", OriginalRemoved);
        writer.WriteBoolean("pathVerified", PathVerified);
        writer.WriteString("detail", Detail);
        writer.WriteEndObject();
    }
}
