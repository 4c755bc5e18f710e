using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OnAccess.Tests;

namespace OnAccess.Core.Tests;

[Collection(nameof(KernelCollection))]
public sealed class HostingTests
{
    [Fact]
    public async Task A_generic_host_with_AddOnAccessScanning_starts_protects_and_stops_cleanly()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", EicarScanner.Eicar);
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(o =>
        {
            o.IncludePaths = [tree.Combine("data")];
            o.Prevention = true;
        }).AddScanner<EicarScanner>();
        using var host = builder.Build();
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        await host.StartAsync(cts.Token);
        var monitor = host.Services.GetRequiredService<IOnAccessMonitor>();
        Assert.True(monitor.Plan!.Prevention);
        Assert.True(Child.WasDenied(await Child.CatAsync(eicar)));
        await host.StopAsync(cts.Token);

        // Stopped: nothing holds the file any more.
        Assert.Equal(0, (await Child.CatAsync(eicar)).ExitCode);
        Assert.Equal(1, monitor.GetStatistics().Denied);
    }

    [Fact]
    public async Task A_bad_option_fails_start_and_names_the_directive()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(o =>
        {
            o.IncludePaths = [tree.Path];
            o.MaxThreads = 0;
        }).AddScanner<EicarScanner>();
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("OnAccessMaxThreads", e.Message, StringComparison.Ordinal);
        Assert.Contains("OA1017", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_clamd_conf_with_an_error_fails_start_naming_file_line_and_directive()
    {
        using var tree = KernelTestSupport.CreateTempTree();
        var conf = tree.File("clamd.conf", $"OnAccessIncludePath {tree.Path}\nOnAccessPrevention maybe\n");
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(conf).AddScanner<EicarScanner>();
        using var host = builder.Build();
        var e = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains($"{conf}:2: OnAccessPrevention", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_scanner_resolution_says_how_to_add_one()
    {
        var services = new ServiceCollection();
        services.AddOnAccessScanning(o => o.IncludePaths = ["/srv"]);
        using var provider = services.BuildServiceProvider();
        var e = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IOnAccessMonitor>());
        Assert.Contains("AddScanner", e.Message, StringComparison.Ordinal);
    }
}
