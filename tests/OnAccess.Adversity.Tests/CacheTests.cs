using OnAccess.ClamAV;
using OnAccess.ClamAV.Tests;
using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// No cached verdict outlives the content it was given for (issue 12, item 2; issue 13, item 2): a writer that
/// changes a file while it is being scanned, or through a shared writable mapping (which raises no FAN_MODIFY and
/// so does not clear a kernel ignore mark), never gets the new content read unscanned. Caches stay on.
/// </summary>
public sealed class CacheTests(CacheTests.InfectedSamplesClamd clamd) : IClassFixture<CacheTests.InfectedSamplesClamd>
{
    public const int Small = 4096;
    public const int Large = 4 * 1024 * 1024;

    [Fact]
    public async Task A_file_rewritten_during_its_scan_is_never_read_infected_afterwards_with_the_built_in_scanner()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var signatures = tree.File("sig/test.hdb", Samples.HdbLine(Samples.Infected(Small), "Test.Infected.4K") + "\n");
        var scanner = new HashDatabaseScanner(new HashDatabaseScannerOptions { SignatureFiles = [signatures] });
        await PoisonAsync(tree, scanner, Small, Soak.Scale(2000, 30));
    }

    /// <summary>
    /// On FUSE (here bindfs over a directory; sshfs, NFS and SMB alike) the content can change without any write through
    /// this kernel's inode: no lease breaks, no FAN_MODIFY, and the timestamps are the server's. A verdict cached there
    /// would let the new content be read unscanned, so nothing is cached on such a filesystem.
    /// </summary>
    [Fact]
    public async Task Content_changed_behind_a_FUSE_filesystem_after_a_clean_open_is_scanned()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var backing = tree.Combine("backing");
        Directory.CreateDirectory(backing);
        File.WriteAllBytes(Path.Combine(backing, "doc.com"), Samples.Clean(EicarScanner.Eicar.Length));
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        var mounted = await KernelTestSupport.RunAsync("/usr/bin/bindfs", backing, data);
        Assert.True(mounted.ExitCode == 0, "bindfs failed (scripts/test.sh installs it): " + mounted.StdErr);
        try
        {
            var file = Path.Combine(data, "doc.com");
            await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [data], Prevention = true }, new EicarScanner());
            Assert.False((await Attacker.OpenAsync(file)).ReadEicar);
            Assert.False((await Attacker.OpenAsync(file)).ReadEicar);

            File.WriteAllText(Path.Combine(backing, "doc.com"), EicarScanner.Eicar); // behind FUSE: the same size
            var after = await Attacker.OpenAsync(file);
            Assert.True(after.Denied, $"the open after the change behind FUSE: {after}");
            Assert.Equal(0, h.Monitor.GetStatistics().KernelCachedFiles);
        }
        finally
        {
            await KernelTestSupport.RunAsync("/bin/umount", "-l", data);
        }
    }

    [Fact]
    public async Task A_file_rewritten_during_its_scan_is_never_read_infected_afterwards_with_clamd()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [clamd.UnixEndpoint] });
        await PoisonAsync(tree, scanner, Small, Soak.Scale(2000, 30));
    }

    [Fact]
    public async Task A_large_file_rewritten_during_its_scan_is_never_read_infected_afterwards_with_clamd()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [clamd.UnixEndpoint] });
        await PoisonAsync(tree, scanner, Large, Soak.Scale(300, 30));
    }

    /// <summary>A clean file is read once (scanned, cached), then EICAR is written into it through a mapping.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Content_written_through_a_shared_mapping_after_a_cached_open_is_scanned(bool writerStillMapped)
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var data = tree.Combine("data");
        var file = Path.Combine(data, "doc.txt");
        Directory.CreateDirectory(data);
        File.WriteAllBytes(file, Samples.Clean(Small));
        var infected = tree.File("infected.src", EicarScanner.Eicar);
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [data], Prevention = true }, new EicarScanner());

        Assert.False((await Attacker.OpenAsync(file)).ReadEicar);
        Assert.False((await Attacker.OpenAsync(file)).ReadEicar); // cached: the kernel no longer asks

        if (writerStillMapped)
        {
            var start = new System.Diagnostics.ProcessStartInfo(Attacker.Path) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in new[] { "mmapwrite", file, infected, "hold" })
            {
                start.ArgumentList.Add(a);
            }

            using var writer = System.Diagnostics.Process.Start(start)!;
            using var timeout = new CancellationTokenSource(KernelTestSupport.Timeout);
            try
            {
                Assert.Equal("written", await writer.StandardOutput.ReadLineAsync(timeout.Token));
                var whileMapped = await Attacker.OpenAsync(file);
                Assert.True(whileMapped.Denied, $"while the writer holds the mapping: {whileMapped}");
            }
            finally
            {
                writer.StandardInput.Close(); // the writer lets the mapping go and exits
                await writer.WaitForExitAsync(timeout.Token);
            }
        }
        else
        {
            Assert.Contains("done", (await Attacker.RunAsync("mmapwrite", file, infected)).StdOut, StringComparison.Ordinal);
        }

        var after = await Attacker.OpenAsync(file);
        Assert.True(after.Denied, $"after the mapping was written: {after}");
    }

    private static async Task PoisonAsync(KernelTestSupport.TempTree tree, IScanner scanner, int size, int tries)
    {
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        var clean = tree.File("clean.src", string.Empty);
        File.WriteAllBytes(clean, Samples.Clean(size));
        var infected = tree.File("infected.src", string.Empty);
        File.WriteAllBytes(infected, Samples.Infected(size));
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [data], Prevention = true }, scanner);

        var result = await Attacker.RunAsync(TimeSpan.FromSeconds(Soak.Seconds(30) * 6), "poison", data, tries.ToString(System.Globalization.CultureInfo.InvariantCulture), clean, infected);
        Assert.StartsWith($"poisoned 0 of {tries}", result.StdOut, StringComparison.Ordinal);
    }

    /// <summary>The suite's clamd, with signatures for the infected samples of both sizes.</summary>
    public sealed class InfectedSamplesClamd : ClamdFixture
    {
        protected override IEnumerable<string> ExtraSignatures =>
        [
            Samples.HdbLine(Samples.Infected(Small), "Test.Infected.4K"),
            Samples.HdbLine(Samples.Infected(Large), "Test.Infected.4M"),
        ];

        protected override long StreamLimit => 16 * 1024 * 1024;
    }
}
