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

        Assert.Equal([(1, 0x100u, 0u), (2, 0x40u, 77u), (3, 0x80u, 77u)], records.Select(r => (r.Wd, r.Mask, r.Cookie)));
        Assert.Equal(["dir"u8.ToArray(), [], "n\u00e9"u8.ToArray()], records.Select(r => r.Name));
        Assert.Equal(all.Length, reader.Consumed);
    }

    [Fact]
    public void Names_are_the_kernel_s_bytes_even_when_they_are_not_UTF8()
    {
        var bytes = new byte[16 + 8];
        var e = new Interop.InotifyEvent { Wd = 1, Mask = 0x100, Cookie = 0, Len = 8 };
        MemoryMarshal.Write(bytes, in e);
        byte[] name = [(byte)'b', 0xff, 0x0a, 0x1b, 0xc3, 0x28];
        name.CopyTo(bytes, 16);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.True(InotifyEventParser.TryReadEvent(ref reader, out var r));
        Assert.Equal(name, r.Name);
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
