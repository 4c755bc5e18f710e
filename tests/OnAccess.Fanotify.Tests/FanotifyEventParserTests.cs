using System.Buffers;
using System.Runtime.InteropServices;
using OnAccess.Tests;

namespace OnAccess.Fanotify.Tests;

/// <summary>The record parser, from byte fixtures laid out as the kernel writes them.</summary>
public sealed class FanotifyEventParserTests
{
    private static byte[] Record(ulong mask, int fd, int pid, byte vers = 3, ushort? metadataLen = null, uint? eventLen = null, byte[]? info = null)
    {
        info ??= [];
        var bytes = new byte[24 + info.Length];
        var m = new Interop.FanotifyEventMetadata
        {
            EventLen = eventLen ?? (uint)bytes.Length,
            Vers = vers,
            MetadataLen = metadataLen ?? 24,
            Mask = mask,
            Fd = fd,
            Pid = pid,
        };
        MemoryMarshal.Write(bytes, in m);
        info.CopyTo(bytes, 24);
        return bytes;
    }

    private static List<FanotifyEventRecord> ParseAll(ReadOnlySequence<byte> buffer, out FanotifyParseError error, out long consumed)
    {
        var reader = new SequenceReader<byte>(buffer);
        var records = new List<FanotifyEventRecord>();
        while (FanotifyEventParser.TryReadEvent(ref reader, out var r, out error))
        {
            records.Add(r);
        }

        consumed = reader.Consumed;
        return records;
    }

    [Fact]
    public void Several_records_in_one_read_are_all_parsed_in_order()
    {
        byte[] buffer = [.. Record(0x20, 5, 100), .. Record(0x10000, 6, 101), .. Record(0x08, 7, 102)];
        var records = ParseAll(new ReadOnlySequence<byte>(buffer), out var error, out var consumed);
        Assert.Equal(FanotifyParseError.None, error);
        Assert.Equal(buffer.Length, consumed);
        Assert.Equal([(0x20UL, 5, 100), (0x10000UL, 6, 101), (0x08UL, 7, 102)], records.Select(r => (r.Mask, r.Fd, r.Pid)));
    }

    [Fact]
    public void A_record_split_across_pipe_segments_is_parsed_whole()
    {
        byte[] info = [2, 0, 12, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        byte[] all = [.. Record(0x20, 5, 100), .. Record(0x20, 9, 200, info: info)];
        foreach (var cut in new[] { 1, 10, 23, 24, 30, 40, all.Length - 1 })
        {
            var sequence = Segments.Create(all[..cut], all[cut..]);
            var records = ParseAll(sequence, out var error, out var consumed);
            Assert.Equal(FanotifyParseError.None, error);
            Assert.Equal(2, records.Count);
            Assert.Equal(all.Length, consumed);
            Assert.Equal(200, records[1].Pid);
            Assert.Equal(info, records[1].Info.ToArray());
        }
    }

    [Fact]
    public void A_partial_record_waits_for_more_bytes()
    {
        var whole = Record(0x20, 5, 100);
        var records = ParseAll(new ReadOnlySequence<byte>(whole[..20]), out var error, out var consumed);
        Assert.Empty(records);
        Assert.Equal(FanotifyParseError.None, error);
        Assert.Equal(0, consumed);

        byte[] withInfo = Record(0x20, 5, 100, info: new byte[16]);
        Assert.Empty(ParseAll(new ReadOnlySequence<byte>(withInfo[..30]), out error, out consumed));
        Assert.Equal(FanotifyParseError.None, error);
    }

    [Fact]
    public void A_wrong_version_is_an_error_not_a_guess()
    {
        var records = ParseAll(new ReadOnlySequence<byte>(Record(0x20, 5, 100, vers: 2)), out var error, out _);
        Assert.Empty(records);
        Assert.Equal(FanotifyParseError.WrongVersion, error);
    }

    [Fact]
    public void An_event_len_shorter_than_the_metadata_is_an_error()
    {
        var records = ParseAll(new ReadOnlySequence<byte>(Record(0x20, 5, 100, eventLen: 16)), out var error, out _);
        Assert.Empty(records);
        Assert.Equal(FanotifyParseError.EventShorterThanMetadata, error);
        ParseAll(new ReadOnlySequence<byte>(Record(0x20, 5, 100, metadataLen: 8)), out error, out _);
        Assert.Equal(FanotifyParseError.MetadataTooShort, error);
    }

    [Fact]
    public void An_event_len_beyond_any_kernel_record_is_an_error_not_a_wait()
    {
        var records = ParseAll(new ReadOnlySequence<byte>(Record(0x20, 5, 100, eventLen: 1_000_000)), out var error, out var consumed);
        Assert.Empty(records);
        Assert.Equal(FanotifyParseError.EventTooLong, error);
        Assert.Equal(0, consumed);
    }

    /// <summary>
    /// A malformed record in a read becomes one EBADMSG notice; the records after it are parsed (their descriptors
    /// owned, so answered and closed) when the event_len fields chain to the end of what was read.
    /// </summary>
    [Fact]
    public void Records_after_a_malformed_one_are_still_parsed_when_their_lengths_chain()
    {
        KernelTestSupport.RequireRoot();
        using var group = FanotifyGroup.Create();
        var (a, b) = (DevNull(), DevNull());
        byte[] buffer = [.. Record(0x20, a, 100), .. Record(0x20, 999, 101, vers: 2), .. Record(0x20, b, 102)];
        var events = new List<FanotifyEvent>();
        FanotifyEventParser.ReadEvents(group, new ReadOnlySequence<byte>(buffer), events);
        try
        {
            Assert.Equal([(100, (int?)null), (0, 74), (102, null)], events.Select(e => (e.ProcessId, e.ReadError)));
        }
        finally
        {
            events.ForEach(e => e.Dispose());
        }

        Assert.False(IsOpen(a));
        Assert.False(IsOpen(b));
    }

    [Fact]
    public void After_a_malformed_record_whose_lengths_do_not_chain_nothing_is_guessed()
    {
        KernelTestSupport.RequireRoot();
        using var group = FanotifyGroup.Create();
        var a = DevNull();
        byte[] buffer = [.. Record(0x20, a, 100), .. Record(0x20, 999, 101, eventLen: 20), .. Record(0x20, 998, 102)];
        var events = new List<FanotifyEvent>();
        FanotifyEventParser.ReadEvents(group, new ReadOnlySequence<byte>(buffer), events);
        try
        {
            Assert.Equal([(100, (int?)null), (0, 74)], events.Select(e => (e.ProcessId, e.ReadError)));
        }
        finally
        {
            events.ForEach(e => e.Dispose());
        }
    }

    [Theory]
    [InlineData(5, true)] // EIO: a network or FUSE filesystem failed to open the event's file
    [InlineData(6, true)] // ENXIO: a device without a driver
    [InlineData(22, true)] // EINVAL
    [InlineData(24, true)] // EMFILE
    [InlineData(13, true)] // EACCES
    [InlineData(9, false)] // EBADF: the group's own descriptor is gone
    [InlineData(14, false)] // EFAULT
    public void Every_read_error_but_the_reader_s_own_is_one_lost_event(int errno, bool perEvent) =>
        Assert.Equal(perEvent, FanotifyEventReader.IsEventFailure(errno));

    /// <summary>
    /// The event's descriptor has one owner: once the event is disposed, a scan still holding <see cref="FanotifyEvent.File"/>
    /// gets ObjectDisposedException, never a read of whatever file reuses the number.
    /// </summary>
    [Fact]
    public void A_disposed_event_s_file_cannot_be_read_even_when_its_number_is_reused()
    {
        KernelTestSupport.RequireRoot();
        using var group = FanotifyGroup.Create();
        var fd = DevNull();
        var events = new List<FanotifyEvent>();
        FanotifyEventParser.ReadEvents(group, new ReadOnlySequence<byte>(Record(0x20, fd, 100)), events);
        var e = Assert.Single(events);
        var file = e.File!;
        e.Dispose();
        var reused = Interop.Libc.Open("/etc/hostname", Interop.Libc.O_RDONLY | Interop.Libc.O_CLOEXEC);
        try
        {
            // The kernel hands out the lowest free number: usually the event's own.
            Assert.Throws<ObjectDisposedException>(() => RandomAccess.Read(file, new byte[16], 0));
        }
        finally
        {
            Interop.Libc.Close(reused);
        }
    }

    private static int DevNull() => Interop.Libc.Open("/dev/null", Interop.Libc.O_RDONLY | Interop.Libc.O_CLOEXEC);

    private static bool IsOpen(int fd) => File.Exists($"/proc/self/fd/{fd}");

    [Fact]
    public void An_overflow_record_has_no_descriptor()
    {
        var record = Assert.Single(ParseAll(new ReadOnlySequence<byte>(Record(0x4000, -1, 0)), out _, out _));
        Assert.Equal(0x4000UL, record.Mask);
        Assert.Equal(-1, record.Fd);
        using var e = new FanotifyEvent(null, record.Mask, record.Fd, record.Pid, [], null);
        Assert.True(e.IsQueueOverflow);
        Assert.Null(e.File);
        Assert.False(e.IsPermissionRequest);
    }

    [Fact]
    public void The_readers_own_failure_record_round_trips_with_errno()
    {
        var writer = new ArrayBufferWriter<byte>();
        FanotifyEventParser.WriteReadFailure(writer, 24);
        var record = Assert.Single(ParseAll(new ReadOnlySequence<byte>(writer.WrittenMemory), out _, out _));
        Assert.True(record.IsReadFailure);
        Assert.Equal(24, record.Pid);
        var kernel = Assert.Single(ParseAll(new ReadOnlySequence<byte>(Record(0x20, 5, 24)), out _, out _));
        Assert.False(kernel.IsReadFailure);
    }

    [Fact]
    public void A_directory_fid_and_name_record_gives_the_name()
    {
        // fsid(8) + handle_bytes(4)=4 + handle_type(4) + handle(4) + "name\0"
        byte[] body = [1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 9, 9, 9, 9, (byte)'n', (byte)'a', (byte)'m', (byte)'e', 0];
        Assert.Equal("name", new FanotifyInfoRecord(2, body).Name);
        Assert.Null(new FanotifyInfoRecord(1, body).Name);
        Assert.Null(new FanotifyInfoRecord(2, body[..10]).Name);
    }

    private sealed class Segments : ReadOnlySequenceSegment<byte>
    {
        private Segments(byte[] data, long runningIndex)
        {
            Memory = data;
            RunningIndex = runningIndex;
        }

        public static ReadOnlySequence<byte> Create(byte[] first, byte[] second)
        {
            var a = new Segments(first, 0);
            var b = new Segments(second, first.Length);
            a.Next = b;
            return new ReadOnlySequence<byte>(a, 0, b, second.Length);
        }
    }
}
