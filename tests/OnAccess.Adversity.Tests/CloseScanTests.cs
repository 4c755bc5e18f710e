using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Scan on close (issue 20, item 1), with prevention and notify-only, on a tmpfs: a file written and closed is scanned
/// after the close, never opened by anyone else; a clean one is a cache hit at its next open; a burst of closes of one
/// file is coalesced; content written after an allowed open is reported at the close.
/// </summary>
public sealed class CloseScanTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_file_written_in_several_writes_and_closed_is_reported_at_the_close(bool prevention)
    {
        KernelTestSupport.RequireRoot();
        var (tree, dir) = await DataOnTmpfsAsync();
        var file = Path.Combine(dir, "written.com");
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [dir], Prevention = prevention }, new EicarScanner());

        // One open (of an empty file: clean), several writes, one close: only the close can see EICAR.
        var eicar = OnAccess.Core.Tests.EicarScanner.Eicar;
        var script = $"exec 3>'{file}'; printf '%s' '{eicar[..20]}' >&3; printf '%s' '{eicar[20..40]}' >&3; printf '%s' '{eicar[40..]}' >&3; exec 3>&-";
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/sh", "-c", script)).ExitCode);
        var seen = await h.WaitForAsync(e => e.Path == file && e.Kind == AccessKind.CloseWrite);
        Assert.Equal(ScanVerdict.Infected, seen.Verdict);
        Assert.Equal(AccessDecision.None, seen.Decision); // a close holds nothing
        Assert.Equal(eicar, File.ReadAllText(file));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_clean_file_written_and_closed_is_a_cache_hit_at_its_next_open_answered_by_the_kernel_with_prevention(bool prevention)
    {
        KernelTestSupport.RequireRoot();
        var (tree, dir) = await DataOnTmpfsAsync();
        var file = Path.Combine(dir, "clean.txt");
        var source = tree.File("clean.src", "clean content");
        var sentinel = Path.Combine(dir, "sentinel");
        File.WriteAllText(sentinel, "opened after the file, to know the monitor has seen what came before");
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [dir], Prevention = prevention }, new EicarScanner());
        await Attacker.RunAsync("write", file, source);
        var closed = await h.WaitForAsync(e => e.Path == file && e.Kind == AccessKind.CloseWrite);
        Assert.Equal((ScanVerdict.Clean, DecisionReason.Scanned), (closed.Verdict, closed.Reason));

        Assert.True((await Attacker.OpenAsync(file)).Opened);
        if (prevention)
        {
            // The close filled the kernel cache: the next open, by another process, never reaches the monitor.
            Assert.Equal(1, h.Monitor.GetStatistics().KernelCachedFiles);
            Assert.True((await Attacker.OpenAsync(sentinel)).Opened);
            await h.WaitForAsync(e => e.Path == sentinel && e.Kind == AccessKind.Open);
            Assert.DoesNotContain(h.Events, e => e.Path == file && e.Kind == AccessKind.Open && e.ProcessId != closed.ProcessId);
        }
        else
        {
            var opened = await h.WaitForAsync(e => e.Path == file && e.Kind == AccessKind.Open && e.ProcessId != closed.ProcessId);
            Assert.Equal(DecisionReason.Cached, opened.Reason);
        }

        var scansOfContent = h.Events.Count(e => e.Path == file && e.Reason == DecisionReason.Scanned && e.Kind != AccessKind.Open);
        Assert.Equal(1, scansOfContent); // the close's: the open for writing scanned an empty file, the next open none
    }

    /// <summary>
    /// 1,000 closes of one file in a burst: at most one scan of it waits at a time, so the scans after closes are few
    /// (each waits for the file's change time to be 50 ms old: the closes of that window are one scan).
    /// </summary>
    [Fact]
    public async Task A_burst_of_closes_of_one_file_is_coalesced()
    {
        KernelTestSupport.RequireRoot();
        var (tree, dir) = await DataOnTmpfsAsync();
        var file = Path.Combine(dir, "burst.txt");
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [dir] }, new EicarScanner());
        var script = $"i=0; while [ $i -lt 1000 ]; do echo $i > '{file}'; i=$((i+1)); done";
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/sh", "-c", script)).ExitCode);
        await Settled.UntilAsync(() => h.Events.Any(e => e.Path == file && e.Kind == AccessKind.CloseWrite) && h.Monitor.GetStatistics() is { QueueDepth: 0, ScansInFlight: 0 }, KernelTestSupport.Timeout);
        await Task.Delay(200, TestContext.Current.CancellationToken); // a scan waiting for its file's change to age (55 ms) is done too
        var scans = h.Events.Count(e => e.Path == file && e.Kind == AccessKind.CloseWrite);
        var coalesced = h.Monitor.GetStatistics().ClosesCoalesced;
        TestContext.Current.TestOutputHelper?.WriteLine($"1000 closes: {scans} scans after a close, {coalesced} closes coalesced here (the kernel merges others in its queue)");
        Assert.InRange(scans, 1, 100);
        Assert.True(coalesced > 0, "no close was coalesced");
    }

    /// <summary>An open allowed (the file clean then), EICAR written through it, the close: reported at the close.</summary>
    [Fact]
    public async Task Content_written_after_an_allowed_open_is_reported_at_the_close()
    {
        KernelTestSupport.RequireRoot();
        var (tree, dir) = await DataOnTmpfsAsync();
        var file = Path.Combine(dir, "grows.com");
        File.WriteAllText(file, "clean at first\n");
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [dir], Prevention = true }, new EicarScanner());
        var script = $"exec 3>>'{file}'; printf '%s' '{OnAccess.Core.Tests.EicarScanner.Eicar}' >&3; exec 3>&-";
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/sh", "-c", script)).ExitCode); // its open was allowed: clean
        var atClose = await h.WaitForAsync(e => e.Path == file && e.Kind == AccessKind.CloseWrite);
        Assert.Equal(ScanVerdict.Infected, atClose.Verdict);
        Assert.True((await Attacker.OpenAsync(file)).Denied); // and from then on, as ever, its opens are denied
    }

    /// <summary>
    /// The attacker writes EICAR through a shared mapping while the scan after their close of clean content runs (a
    /// write through a mapping changes no timestamp at once): that clean verdict must not be remembered, and the next
    /// open is scanned and denied.
    /// </summary>
    [Fact]
    public async Task EICAR_written_through_a_mapping_during_the_scan_after_a_close_is_not_read_afterwards()
    {
        KernelTestSupport.RequireRoot();
        var (tree, dir) = await DataOnTmpfsAsync();
        var file = Path.Combine(dir, "mapped.com");
        var clean = tree.File("clean.src", new string('a', Samples.Eicar.Length));
        var infected = tree.File("eicar.src", OnAccess.Core.Tests.EicarScanner.Eicar);
        var scanner = new EicarScanner { Delay = TimeSpan.FromMilliseconds(300) };
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [dir], Prevention = true }, scanner);

        await Attacker.RunAsync("write", file, clean);
        await Settled.UntilAsync(() => scanner.Requests.Any(r => r.Kind == AccessKind.CloseWrite), KernelTestSupport.Timeout);
        Assert.Contains(scanner.Requests, r => r.Kind == AccessKind.CloseWrite); // the scan after the close is under way
        await Attacker.RunAsync("mmapwrite", file, infected);
        await Settled.UntilAsync(() => h.Monitor.GetStatistics() is { QueueDepth: 0, ScansInFlight: 0 }, KernelTestSupport.Timeout);

        var outcome = await Attacker.OpenAsync(file);
        Assert.True(outcome.Denied, $"the open after the mapped write: {outcome}");
        Assert.False(outcome.ReadEicar);
    }

    /// <summary>
    /// Where timestamps have whole seconds (ext4 with 128-byte inodes) a verdict is remembered only once the change is
    /// older than 2 s and the margin: the scan after a close waits that long (nothing is held meanwhile), so the next
    /// open is still a cache hit. It waited a second at most before, and the next open was scanned again.
    /// </summary>
    [Fact]
    public async Task Where_timestamps_have_whole_seconds_the_scan_after_a_close_waits_until_its_verdict_can_be_remembered()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var dir = Path.Combine(await tree.MountImageAsync("coarse", "/sbin/mkfs.ext4", "-q", "-F", "-I", "128"), "data");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, "clean.txt");
        var source = tree.File("clean.src", "clean content");
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [dir], Prevention = false }, new EicarScanner());
        await Attacker.RunAsync("write", file, source);
        var closed = await h.WaitForAsync(e => e.Path == file && e.Kind == AccessKind.CloseWrite);
        Assert.Equal((ScanVerdict.Clean, DecisionReason.Scanned), (closed.Verdict, closed.Reason));

        Assert.True((await Attacker.OpenAsync(file)).Opened);
        var opened = await h.WaitForAsync(e => e.Path == file && e.Kind == AccessKind.Open && e.ProcessId != closed.ProcessId);
        Assert.Equal(DecisionReason.Cached, opened.Reason);
    }

    /// <summary>A temp tree with a tmpfs of its own holding the directory to protect ("data"); the harness disposes the tree.</summary>
    private static async Task<(KernelTestSupport.TempTree Tree, string Dir)> DataOnTmpfsAsync()
    {
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var dir = Path.Combine(await tree.MountTmpfsAsync("fs"), "data");
        Directory.CreateDirectory(dir);
        return (tree, dir);
    }
}
