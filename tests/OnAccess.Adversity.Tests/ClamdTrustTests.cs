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
