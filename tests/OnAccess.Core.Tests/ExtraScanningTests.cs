using OnAccess.Tests;

namespace OnAccess.Core.Tests;

[Collection(nameof(KernelCollection))]
public sealed class ExtraScanningTests
{
    /// <summary>
    /// Extra scanning opens what the tracker reports, on the tracker's consumer: it opens without waiting (O_NONBLOCK)
    /// and checks the type on the descriptor, so a FIFO (which a plain open would wait on for a writer) neither
    /// holds the tracking of later directories nor gets scanned.
    /// </summary>
    [Fact]
    public async Task A_FIFO_made_in_the_tree_is_not_scanned_and_does_not_hold_the_tracking_of_later_directories()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        var options = new Config.OnAccessOptions { IncludePaths = [data], Prevention = true, ExtraScanning = true };
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());

        var pipe = Path.Combine(data, "pipe");
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/usr/bin/mkfifo", pipe)).ExitCode);
        try
        {
            var marks = h.Monitor.GetStatistics().MarkedDirectories;
            var later = Path.Combine(data, "later");
            Directory.CreateDirectory(later);
            await h.WaitForMarksAsync(marks + 1);
            var dropped = Path.Combine(later, "eicar.com");
            await File.WriteAllTextAsync(dropped, EicarScanner.Eicar, TestContext.Current.CancellationToken);

            var reported = await h.WaitForAsync(e => e.Path == dropped && e.Kind is AccessKind.CloseWrite or AccessKind.Created && e.Verdict == ScanVerdict.Infected);
            Assert.Equal(AccessDecision.None, reported.Decision); // extra scanning holds nothing: it reports
            Assert.True(Child.WasDenied(await Child.CatAsync(dropped)));
            Assert.DoesNotContain(h.Events, e => e.Path == pipe);
        }
        finally
        {
            // Should an open be waiting on the FIFO (the bug this guards against), give it a writer and remove the
            // FIFO (the writer's close would start another extra scan of it), so that the test fails on its
            // timeouts instead of hanging in the monitor's shutdown. O_RDWR never waits.
            await KernelTestSupport.RunAsync("/bin/sh", "-c", $"exec 3<>'{pipe}'; rm '{pipe}'");
        }
    }
}
