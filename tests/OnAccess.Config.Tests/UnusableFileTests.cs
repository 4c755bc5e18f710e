using System.Diagnostics;

namespace OnAccess.Config.Tests;

/// <summary>
/// A file that is not a clamd.conf is refused with the file (and line) named, never read to its end: before, a device
/// such as /dev/zero ran the reader out of memory (the process died, rc 134), and a file of NUL bytes echoed one
/// 100,000-character "directive" into the message.
/// </summary>
public sealed class UnusableFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("onaccess-conf-").FullName;

    [Fact]
    public void A_device_is_refused_before_it_is_read()
    {
        var e = Assert.Throws<ClamdConfException>(() => ClamdConf.Load("/dev/zero"));
        Assert.Equal("/dev/zero", e.FilePath);
        Assert.Contains("not a regular file", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_FIFO_is_refused_without_waiting_for_a_writer()
    {
        var fifo = Path.Combine(_dir, "clamd.conf");
        using (var mkfifo = Process.Start("mkfifo", fifo))
        {
            mkfifo.WaitForExit();
        }

        var e = Assert.Throws<ClamdConfException>(() => ClamdConf.Load(fifo));
        Assert.Contains("not a regular file", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_huge_file_is_refused_without_being_read_whole()
    {
        var huge = Path.Combine(_dir, "huge.conf");
        using (var stream = File.Create(huge))
        {
            stream.SetLength(4L * 1024 * 1024 * 1024); // sparse: 4 GiB that take no space
        }

        var e = Assert.Throws<ClamdConfException>(() => ClamdConf.Load(huge));
        Assert.Contains("larger than", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_binary_file_names_its_first_line_with_a_NUL_byte()
    {
        var binary = Path.Combine(_dir, "binary.conf");
        File.WriteAllBytes(binary, [.. "ScanOnAccess yes\n"u8, .. new byte[100_000]]);
        var e = Assert.Throws<ClamdConfException>(() => ClamdConf.Load(binary));
        Assert.Equal(2, e.Line);
        Assert.Contains("NUL byte", e.Reason, StringComparison.Ordinal);
        Assert.True(e.Message.Length < 300, e.Message);
    }

    [Fact]
    public void A_long_or_hostile_directive_name_is_cut_and_escaped_in_the_message()
    {
        var e = Assert.Throws<ClamdConfException>(() => ClamdConf.Parse(new string('A', 10_000) + "\u001b[2J yes\n"));
        Assert.True(e.Message.Length < 400, e.Message);
        var escape = Assert.Throws<ClamdConfException>(() => ClamdConf.Parse("Evil\u001b[2J yes\n"));
        Assert.DoesNotContain('\u001b', escape.Message);
        Assert.Contains(@"Evil\x1b[2J", escape.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
