using System.Buffers;
using System.Runtime.InteropServices;

namespace OnAccess.Inotify;

/// <summary>One <c>inotify_event</c>: the fixed fields and the name's bytes (cut at its first NUL; empty when len is 0).</summary>
internal readonly record struct InotifyRecord(int Wd, uint Mask, uint Cookie, byte[] Name);

/// <summary>Parses whole <c>inotify_event</c> records at fixed offsets.</summary>
internal static class InotifyEventParser
{
    public const int HeaderSize = 16;

    /// <summary>Reads one whole record; <see langword="false"/> when only part of one is buffered.</summary>
    public static bool TryReadEvent(ref SequenceReader<byte> reader, out InotifyRecord record)
    {
        record = default;
        Span<byte> header = stackalloc byte[HeaderSize];
        if (!reader.TryCopyTo(header))
        {
            return false;
        }

        var e = MemoryMarshal.Read<Interop.InotifyEvent>(header);
        if (reader.Remaining < HeaderSize + (long)e.Len)
        {
            return false;
        }

        reader.Advance(HeaderSize);
        byte[] name = [];
        if (e.Len > 0)
        {
            var nameBytes = reader.UnreadSequence.Slice(0, e.Len);
            var bytes = nameBytes.IsSingleSegment ? nameBytes.FirstSpan : nameBytes.ToArray();
            var end = bytes.IndexOf((byte)0);
            name = (end < 0 ? bytes : bytes[..end]).ToArray();
            reader.Advance(e.Len);
        }

        record = new InotifyRecord(e.Wd, e.Mask, e.Cookie, name);
        return true;
    }
}
