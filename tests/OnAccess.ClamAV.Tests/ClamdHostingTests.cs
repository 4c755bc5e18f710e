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

    /// <summary>
    /// clamd unreachable at start-up: the host does not start (it used to start and allow every open as a scan error,
    /// saying "Cannot assign requested address" for a missing socket), and the error names each endpoint and the real
    /// reason. Nothing is marked: the data stays readable.
    /// </summary>
    [Fact]
    public async Task Start_up_refuses_when_no_clamd_endpoint_answers_and_names_each_reason()
    {
        KernelTestSupport.RequireRoot();
        using var tree = TestFiles.Tree();
        var eicar = tree.File("data/eicar.com", HashDatabaseScanner.EicarTestString);
        var notASocket = tree.File("file.sock", "not a socket");
        var stale = tree.Combine("stale.sock");
        using var left = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        left.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(stale)); // a socket nobody listens on, like one a dead clamd left

        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(o =>
        {
            o.IncludePaths = [tree.Combine("data")];
            o.Prevention = true;
        }).AddClamdScanner(o =>
        {
            o.Endpoints.Add("unix:" + tree.Combine("missing.sock"));
            o.Endpoints.Add("unix:" + notASocket);
            o.Endpoints.Add("unix:" + stale);
            o.Endpoints.Add("tcp://127.0.0.1:1");
        });
        using var host = builder.Build();
        var e = await Assert.ThrowsAnyAsync<IOException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        TestContext.Current.TestOutputHelper?.WriteLine(e.Message);
        Assert.Contains($"no such socket: {tree.Combine("missing.sock")} does not exist", e.Message, StringComparison.Ordinal);
        Assert.Contains($"{notASocket} is not a socket", e.Message, StringComparison.Ordinal);
        Assert.Contains($"connection refused: nothing listens at {stale}", e.Message, StringComparison.Ordinal);
        Assert.Contains("connection refused: nothing listens on 127.0.0.1:1", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Cannot assign requested address", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).ExitCode); // nothing was marked
    }

    /// <summary>With StartupWait, start-up waits for a clamd that comes up late, then protects.</summary>
    [Fact]
    public async Task Start_up_waits_for_a_clamd_that_comes_up_within_StartupWait()
    {
        KernelTestSupport.RequireRoot();
        using var tree = TestFiles.Tree();
        var eicar = tree.File("data/eicar.com", HashDatabaseScanner.EicarTestString);
        var socket = tree.Combine("late.sock");
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddOnAccessScanning(o =>
        {
            o.IncludePaths = [tree.Combine("data")];
            o.Prevention = true;
        }).AddClamdScanner(o =>
        {
            o.Endpoints.Add("unix:" + socket);
            o.Mode = ClamdScanMode.Stream; // the stand-in speaks INSTREAM
            o.StartupWait = TimeSpan.FromSeconds(30);
        });
        using var host = builder.Build();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(KernelTestSupport.Timeout);
        var starting = host.StartAsync(cts.Token);
        await Task.Delay(600, cts.Token); // clamd comes up late: several pings fail first
        Assert.False(starting.IsCompleted, "start-up did not wait for clamd");
        await using (StubClamd.Start(socket, hold: 0, TimeSpan.FromSeconds(5)))
        {
            await starting;
            try
            {
                Assert.NotEqual(0, (await KernelTestSupport.RunAsync("/bin/cat", eicar)).ExitCode);
            }
            finally
            {
                await host.StopAsync(cts.Token);
            }
        }
    }
}
