using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Interop.FanotifyConstants;

namespace OnAccess.Fanotify;

/// <summary>One record as read from the kernel: the metadata and the bytes of its info records. Allocates nothing.</summary>
internal readonly struct FanotifyEventRecord
{
    public FanotifyEventRecord(ulong mask, int fd, int pid, ReadOnlySequence<byte> info)
    {
        Mask = mask;
        Fd = fd;
        Pid = pid;
        Info = info;
    }

    public ulong Mask { get; }

    public int Fd { get; }

    public int Pid { get; }

    /// <summary>The info records that follow the metadata (empty unless file ids or pidfds are reported).</summary>
    public ReadOnlySequence<byte> Info { get; }

    /// <summary>A record the reader thread writes itself: a read(2) failure, with errno in <see cref="Pid"/>.</summary>
    public bool IsReadFailure => (Mask & FanotifyEventParser.ReadFailureMarker) != 0;
}

/// <summary>What is wrong with a kernel record.</summary>
internal enum FanotifyParseError
{
    None,
    WrongVersion,
    MetadataTooShort,
    EventShorterThanMetadata,
}

/// <summary>Parses whole <c>fanotify_event_metadata</c> records; advances by <c>event_len</c>.</summary>
internal static class FanotifyEventParser
{
    /// <summary>A mask bit the kernel never sets, marking the reader thread's own read-failure records.</summary>
    internal const ulong ReadFailureMarker = 1UL << 63;

    internal static readonly int MetadataSize = Unsafe.SizeOf<Interop.FanotifyEventMetadata>();

    /// <summary>
    /// Reads one whole record. Returns <see langword="false"/> with <see cref="FanotifyParseError.None"/> when the
    /// buffer holds only part of one (wait for more), or with an error when the stream cannot be trusted.
    /// </summary>
    public static bool TryReadEvent(ref SequenceReader<byte> reader, out FanotifyEventRecord record, out FanotifyParseError error)
    {
        record = default;
        error = FanotifyParseError.None;
        Interop.FanotifyEventMetadata metadata;
        var unread = reader.UnreadSpan;
        if (unread.Length >= MetadataSize)
        {
            metadata = MemoryMarshal.Read<Interop.FanotifyEventMetadata>(unread);
        }
        else
        {
            Span<byte> scratch = stackalloc byte[MetadataSize];
            if (!reader.TryCopyTo(scratch))
            {
                return false;
            }

            metadata = MemoryMarshal.Read<Interop.FanotifyEventMetadata>(scratch);
        }

        if (metadata.Vers != FANOTIFY_METADATA_VERSION)
        {
            error = FanotifyParseError.WrongVersion;
            return false;
        }

        if (metadata.MetadataLen < MetadataSize)
        {
            error = FanotifyParseError.MetadataTooShort;
            return false;
        }

        if (metadata.EventLen < metadata.MetadataLen)
        {
            error = FanotifyParseError.EventShorterThanMetadata;
            return false;
        }

        if (reader.Remaining < metadata.EventLen)
        {
            return false;
        }

        var info = reader.UnreadSequence.Slice(metadata.MetadataLen, metadata.EventLen - metadata.MetadataLen);
        record = new FanotifyEventRecord(metadata.Mask, metadata.Fd, metadata.Pid, info);
        reader.Advance(metadata.EventLen);
        return true;
    }

    /// <summary>
    /// Parses every whole record in <paramref name="buffer"/> into an event of <paramref name="group"/> (which then
    /// owns its descriptors) and returns how many bytes that took; a partial record at the end is left for later.
    /// </summary>
    /// <exception cref="InvalidDataException">A malformed record: nothing after it can be trusted, and descriptors in
    /// it cannot be answered. The events parsed before it are in <paramref name="events"/>.</exception>
    public static long ReadEvents(FanotifyGroup group, ReadOnlySequence<byte> buffer, List<FanotifyEvent> events)
    {
        var reader = new SequenceReader<byte>(buffer);
        FanotifyParseError error;
        while (TryReadEvent(ref reader, out var record, out error))
        {
            events.Add(FanotifyEvent.FromRecord(group, record));
        }

        return error == FanotifyParseError.None
            ? reader.Consumed
            : throw new InvalidDataException($"fanotify returned a malformed record ({error}); reading stops. Close the group so the kernel allows pending accesses.");
    }

    /// <summary>Writes the record that stands for a failed read(2): errno in the pid field, no descriptor.</summary>
    public static void WriteReadFailure(IBufferWriter<byte> writer, int errno)
    {
        var metadata = new Interop.FanotifyEventMetadata
        {
            EventLen = (uint)MetadataSize,
            Vers = FANOTIFY_METADATA_VERSION,
            MetadataLen = (ushort)MetadataSize,
            Mask = ReadFailureMarker,
            Fd = FAN_NOFD,
            Pid = errno,
        };
        var span = writer.GetSpan(MetadataSize);
        MemoryMarshal.Write(span, in metadata);
        writer.Advance(MetadataSize);
    }
}
