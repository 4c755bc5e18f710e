using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OnAccess.Tests;

namespace OnAccess.ClamAV.Tests;

/// <summary>AddClamdScanner in a generic host: the scanner it registers is the one the monitor uses, and a bad endpoint stops start-up.</summary>
[Collection(nameof(ClamdCollection))]
public sealed class ClamdHostingTests(SharedClamd clamd)
{
    [Fact]
    public async Task AddClamdScanner_registers_clamd_as_the_scanner_and_the_hosted_monitor_denies_EICAR()
    {
        KernelTestSupport.RequireRoot();
        using var tree = TestFiles.Tree();
        var eicar = tree.File("data/eicar.com", HashDatabaseScanner.EicarTestString);
        var clean = tree.File("data/clean.txt", "clean content");
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(o =>
        {
            o.IncludePaths = [tree.Combine("data")];
            o.Prevention = true;
        }).AddClamdScanner(o => o.Endpoints.Add(clamd.UnixEndpoint));
        using var host = builder.Build();

        var scanner = Assert.IsType<ClamdScanner>(host.Services.GetRequiredService<IScanner>());
        Assert.Same(host.Services.GetRequiredService<ClamdScanner>(), scanner);
        Assert.Equal([clamd.UnixEndpoint], scanner.Endpoints);

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(KernelTestSupport.Timeout);
        await host.StartAsync(cts.Token);
        try
        {
            var denied = await KernelTestSupport.RunAsync("/bin/cat", eicar);
            Assert.NotEqual(0, denied.ExitCode);
            Assert.Contains("Operation not permitted", denied.StdErr, StringComparison.Ordinal);
            var allowed = await KernelTestSupport.RunAsync("/bin/cat", clean);
            Assert.Equal(0, allowed.ExitCode);
            Assert.Equal("clean content", allowed.StdOut);
            var statistics = host.Services.GetRequiredService<IOnAccessMonitor>().GetStatistics();
            Assert.Equal(1, statistics.Infected);
            Assert.Equal(1, statistics.Denied);
        }
        finally
        {
            await host.StopAsync(cts.Token);
        }
    }

    [Theory]
    [InlineData("clamd.example:3310", "'clamd.example:3310' is not a clamd endpoint")]
    [InlineData(null, "No clamd endpoint")]
    public async Task A_bad_clamd_endpoint_fails_start_saying_what_is_wrong(string? endpoint, string message)
    {
        using var tree = TestFiles.Tree();
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(o => o.IncludePaths = [tree.Path]).AddClamdScanner(o =>
        {
            if (endpoint is not null)
            {
                o.Endpoints.Add(endpoint);
            }
        });
        using var host = builder.Build();
        var e = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains(message, e.ToString(), StringComparison.Ordinal);
    }
}
