using OnAccess.Tests;

namespace OnAccess.ClamAV.Tests;

/// <summary>OnAccess with prevention and clamd in FILDES mode, as root, with child processes.</summary>
[Collection(nameof(ClamdCollection))]
public sealed class EndToEndTests(SharedClamd clamd)
{
    [Fact]
    public async Task Prevention_with_clamd_FILDES_denies_EICAR_and_allows_a_clean_file()
    {
        KernelTestSupport.RequireRoot();
        using var tree = TestFiles.Tree();
        var eicar = tree.File("protected/sub/eicar.com", HashDatabaseScanner.EicarTestString);
        var clean = tree.File("protected/clean.txt", "clean content");

        // Infected and over clamd's StreamMaxLength: found only if clamd reads the descriptor (FILDES); streamed
        // (INSTREAM), clamd would refuse it as too large and it would not count as infected.
        var big = tree.Combine("protected/big.bin");
        File.WriteAllBytes(big, SharedClamd.OverStreamLimit);
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [clamd.UnixEndpoint] });
        var options = new Config.OnAccessOptions { IncludePaths = [tree.Combine("protected")], Prevention = true };
        await using var monitor = new OnAccessMonitor(options, scanner);
        await monitor.StartAsync(TestContext.Current.CancellationToken);

        var denied = await KernelTestSupport.RunAsync("/bin/cat", eicar);
        Assert.NotEqual(0, denied.ExitCode);
        Assert.Contains("Operation not permitted", denied.StdErr, StringComparison.Ordinal);
        var allowed = await KernelTestSupport.RunAsync("/bin/cat", clean);
        Assert.Equal(0, allowed.ExitCode);
        Assert.Equal("clean content", allowed.StdOut);
        var bigDenied = await KernelTestSupport.RunAsync("/bin/cat", big);
        Assert.NotEqual(0, bigDenied.ExitCode);
        Assert.Contains("Operation not permitted", bigDenied.StdErr, StringComparison.Ordinal);
        Assert.Equal(2, monitor.GetStatistics().Denied);
        Assert.Equal(2, monitor.GetStatistics().Infected);
    }
}
