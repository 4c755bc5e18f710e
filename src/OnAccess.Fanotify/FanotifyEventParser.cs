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
    EventTooLong,
}

/// <summary>Parses whole <c>fanotify_event_metadata</c> records; advances by <c>event_len</c>.</summary>
internal static class FanotifyEventParser
{
    /// <summary>A mask bit the kernel never sets, marking the reader thread's own read-failure records.</summary>
    internal const ulong ReadFailureMarker = 1UL << 63;

    internal static readonly int MetadataSize = Unsafe.SizeOf<Interop.FanotifyEventMetadata>();

    /// <summary>
    /// No kernel record comes near this (metadata, two file handles of MAX_HANDLE_SZ, a name of NAME_MAX, a pidfd, an
    /// error and a range fit in well under 1 KiB): a longer <c>event_len</c> is a malformed record, not one to wait for.
    /// </summary>
    internal const int MaxEventLength = 8192;

    /// <summary>errno of the notice that stands for records that could not be parsed: EBADMSG.</summary>
    internal const int MalformedRecordErrno = 74;

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

        if (metadata.EventLen > MaxEventLength)
        {
            error = FanotifyParseError.EventTooLong;
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
    /// Parses every record of <paramref name="buffer"/>, which holds what whole read(2) calls returned (so whole
    /// records), into events of <paramref name="group"/>, which then own their descriptors. A record that cannot be
    /// parsed (or a trailing partial one) becomes one notice (<see cref="FanotifyEvent.ReadError"/> EBADMSG); the
    /// records after it are still parsed, their descriptors owned and their accesses answerable, when the
    /// <c>event_len</c> fields from it on chain exactly to the end of the buffer (<c>event_len</c> leads every version
    /// of the record). Otherwise the rest cannot be trusted and is dropped with that one notice: the caller should
    /// then close the group, which makes the kernel allow whatever those records held.
    /// </summary>
    public static void ReadEvents(FanotifyGroup group, ReadOnlySequence<byte> buffer, List<FanotifyEvent> events)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (!reader.End)
        {
            if (TryReadEvent(ref reader, out var record, out _))
            {
                events.Add(FanotifyEvent.FromRecord(group, record));
                continue;
            }

            events.Add(FanotifyEvent.ForReadFailure(MalformedRecordErrno));
            if (!TrySkipMalformed(ref reader))
            {
                return;
            }
        }
    }

    /// <summary>Steps over the malformed record at the reader when the lengths from it on chain to the end exactly.</summary>
    private static bool TrySkipMalformed(ref SequenceReader<byte> reader)
    {
        var probe = reader;
        long first = -1;
        while (!probe.End)
        {
            if (!probe.TryReadLittleEndian(out int length) || length < MetadataSize || length - 4 > probe.Remaining)
            {
                return false;
            }

            first = first < 0 ? length : first;
            probe.Advance(length - 4);
        }

        reader.Advance(first);
        return true;
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
