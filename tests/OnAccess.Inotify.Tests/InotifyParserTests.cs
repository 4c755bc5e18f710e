using System.Buffers;
using System.Runtime.InteropServices;

namespace OnAccess.Inotify.Tests;

public sealed class InotifyParserTests
{
    private static byte[] Record(int wd, uint mask, uint cookie, string name, int padTo)
    {
        var len = padTo;
        var bytes = new byte[16 + len];
        var e = new Interop.InotifyEvent { Wd = wd, Mask = mask, Cookie = cookie, Len = (uint)len };
        MemoryMarshal.Write(bytes, in e);
        System.Text.Encoding.UTF8.GetBytes(name).CopyTo(bytes, 16);
        return bytes;
    }

    [Fact]
    public void Records_are_read_at_fixed_offsets_and_names_cut_at_the_first_NUL()
    {
        byte[] all = [.. Record(1, 0x100, 0, "dir", 16), .. Record(2, 0x40, 77, string.Empty, 0), .. Record(3, 0x80, 77, "n\u00e9", 4)];
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(all));
        var records = new List<InotifyRecord>();
        while (InotifyEventParser.TryReadEvent(ref reader, out var r))
        {
            records.Add(r);
        }

        Assert.Equal([new InotifyRecord(1, 0x100, 0, "dir"), new InotifyRecord(2, 0x40, 77, string.Empty), new InotifyRecord(3, 0x80, 77, "n\u00e9")], records);
        Assert.Equal(all.Length, reader.Consumed);
    }

    [Fact]
    public void A_partial_record_waits()
    {
        var one = Record(1, 0x100, 0, "dir", 16);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(one.AsMemory(0, 20)));
        Assert.False(InotifyEventParser.TryReadEvent(ref reader, out _));
        Assert.Equal(0, reader.Consumed);
    }
}
