using OnAccess.Tests;

namespace OnAccess.Inotify.Tests;

public sealed class OverflowTests
{
    [Fact]
    public async Task With_the_reader_held_back_an_overflow_is_reported_and_the_tree_resynchronises_exactly()
    {
        var maxQueued = int.Parse(File.ReadAllText("/proc/sys/fs/inotify/max_queued_events").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        await using var h = TreeHarness.Start(r =>
        {
            for (var i = 0; i < 20; i++)
            {
                Directory.CreateDirectory(Path.Combine(r, "old", i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }
        });

        // The events must land on a directory that is already watched.
        Directory.CreateDirectory(h.P("many"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("many"));
        await h.QuiesceAsync();

        h.DirectoryTree.Pump!.Pause();
        try
        {
            // More events than the kernel queues: one IN_CREATE per new directory, plus removals of tracked ones.
            var count = maxQueued + 8000; // the reader may take one last 64 KiB read before it holds
            var script = $"cd '{h.P("many")}' && seq 1 {count} | xargs mkdir && rm -rf '{h.P("old")}'";
            var result = await KernelTestSupport.RunAsync("/bin/sh", "-c", script);
            Assert.True(result.ExitCode == 0, result.StdErr);
        }
        finally
        {
            h.DirectoryTree.Pump.Resume();
        }

        await h.WaitForAsync(DirectoryTreeEventKind.Overflowed, string.Empty);
        await h.WaitForAsync(DirectoryTreeEventKind.Resynchronized, string.Empty);
        Assert.True(h.DirectoryTree.OverflowCount >= 1);
        await h.AssertExactAsync();
        Assert.Contains(h.Seen, e => e.Kind == DirectoryTreeEventKind.DirectoryRemoved && e.Path == h.P("old/7"));
    }
}
