using System.Globalization;
using OnAccess.ClamAV;
using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// clamd proves who it is before it gets a descriptor (issue 13, item 3). An impostor listening where clamd's socket
/// should be (a user's process, or a socket in a directory anyone may write) is refused: it is given nothing to read,
/// and the open is decided by OnAccessDenyOnError.
/// </summary>
public sealed class ClamdTrustTests
{
    /// <summary>
    /// A loopback TCP port is anyone's to take while clamd is down, and a farm probes an ejected endpoint back in: a
    /// taker answering PONG, then "OK" to every scan, would have been believed (and sent every scanned file). The owner
    /// of the listening socket is checked after the connect, before anything is sent.
    /// </summary>
    [Fact]
    public async Task A_loopback_port_taken_by_another_user_is_refused_before_anything_is_sent()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var eicar = tree.File("eicar.com", EicarScanner.Eicar);
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }

        // An impostor as nobody: it answers PONG to anything, and says how many bytes each connection sent it.
        var script = "use IO::Socket::INET; $| = 1; "
            + $"my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => {port}, Listen => 16, ReuseAddr => 1) or die \"$!\"; "
            + "print \"listening\\n\"; "
            + "while (my $c = $s->accept) { print $c \"PONG\\0\"; my $all = ''; while (sysread($c, my $b, 65536)) { $all .= $b } print \"received \", length($all), \"\\n\"; close $c }";
        using var impostor = KernelTestSupport.Start("/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/perl", "-e", script);
        try
        {
            using var timeout = new CancellationTokenSource(KernelTestSupport.Timeout);
            Assert.Equal("listening", await impostor.StandardOutput.ReadLineAsync(timeout.Token));
            await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [$"tcp://127.0.0.1:{port}"], ConnectTimeout = TimeSpan.FromSeconds(2) });
            var result = await OnAccess.ClamAV.Tests.TestFiles.ScanAsync(scanner, eicar);
            Assert.Equal(ScanVerdict.Error, result.Verdict);
            Assert.Contains("uid 65534", result.Reason, StringComparison.Ordinal);
            Assert.False((await scanner.PingAsync(timeout.Token)).Values.Single(), "PONG from the impostor counted");

            // Whatever it was asked: each connection sent it nothing at all.
            impostor.Kill();
            await impostor.WaitForExitAsync(timeout.Token);
            var said = await impostor.StandardOutput.ReadToEndAsync(timeout.Token);
            Assert.All(said.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.Equal("received 0", line));
        }
        finally
        {
            if (!impostor.HasExited)
            {
                impostor.Kill();
            }
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_impostor_running_as_nobody_gets_no_descriptor_and_the_open_follows_the_error_policy(bool denyOnError)
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
        var run = tree.Combine("run");
        Directory.CreateDirectory(run);
        File.SetUnixFileMode(run, (UnixFileMode)0b1_111_111_111); // like /tmp: sticky and world-writable
        await ImpostorRefusedAsync(tree, run, ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", Attacker.Path], denyOnError);
    }

    [Fact]
    public async Task A_socket_in_a_directory_others_can_write_is_refused_even_when_root_listens()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
        var run = tree.Combine("run");
        Directory.CreateDirectory(run);
        File.SetUnixFileMode(run, (UnixFileMode)0b111_111_111); // world-writable, not sticky: anyone may replace the socket
        await ImpostorRefusedAsync(tree, run, [Attacker.Path], denyOnError: true);
    }

    private static async Task ImpostorRefusedAsync(KernelTestSupport.TempTree tree, string run, string[] command, bool denyOnError)
    {
        var socket = Path.Combine(run, "clamd.socket");
        var proof = Path.Combine(run, "proof");
        var secret = tree.File("data/secret.txt", "TOP-SECRET-" + Guid.NewGuid().ToString("N"));
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var impostor = KernelTestSupport.Start(command[0], [.. command[1..], "fake-clamd", socket, proof]);
        try
        {
            Assert.Equal("listening", await impostor.StandardOutput.ReadLineAsync());
            await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = ["unix:" + socket] });
            var options = new OnAccessOptions { IncludePaths = [tree.Combine("data")], Prevention = true, DenyOnError = denyOnError };

            // At start-up the impostor is refused before anything is marked: the monitor does not start.
            var refused = await Assert.ThrowsAsync<IOException>(async () => await MonitorHarness.StartAsync(tree, options, scanner));
            Assert.Contains("is not trusted", refused.Message, StringComparison.Ordinal);

            // Once running (the impostor took clamd's place later), each scan refuses it: the open follows the policy.
            await using var h = await MonitorHarness.StartAsync(tree, options, new ScanOnly(scanner));

            var opened = await Attacker.OpenAsync(secret);
            Assert.Equal(denyOnError ? "DENIED" : "OK", opened.Status);
            var decision = await h.WaitForPathAsync(secret);
            Assert.Equal(ScanVerdict.Error, decision.Verdict);
            Assert.Contains("clamd", decision.Detail ?? string.Empty, StringComparison.Ordinal);
            Assert.False(File.Exists(proof) && File.ReadAllText(proof).Contains("TOP-SECRET", StringComparison.Ordinal), "the impostor read the file");
        }
        finally
        {
            await KernelTestSupport.RunAsync("/bin/kill", "-KILL", impostor.Id.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The scanner without its start-up check: a monitor that started while clamd was still itself.</summary>
    private sealed class ScanOnly(IScanner scanner) : IScanner
    {
        public ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken) => scanner.ScanAsync(request, cancellationToken);
    }
}
