using System.Diagnostics;
using OnAccess.Tests;

namespace OnAccess.Core.Tests;

/// <summary>
/// {scanner throws, hangs, returns error} × {RetryAttempts 0, 2} × {DenyOnError yes, no}: error and timeout deny
/// exactly when DenyOnError is set, after the retries (clamonacc forgets the error once retries run out), and a hung
/// scanner never holds an open past the deadline.
/// </summary>
[Collection(nameof(KernelCollection))]
public sealed class ErrorPolicyMatrixTests
{
    private static readonly TimeSpan ScanTimeout = TimeSpan.FromMilliseconds(1500);

    [Theory]
    [InlineData(Fault.Throws, 0, true)]
    [InlineData(Fault.Throws, 0, false)]
    [InlineData(Fault.Throws, 2, true)]
    [InlineData(Fault.Throws, 2, false)]
    [InlineData(Fault.Hangs, 0, true)]
    [InlineData(Fault.Hangs, 0, false)]
    [InlineData(Fault.Hangs, 2, true)]
    [InlineData(Fault.Hangs, 2, false)]
    [InlineData(Fault.ReturnsError, 0, true)]
    [InlineData(Fault.ReturnsError, 0, false)]
    [InlineData(Fault.ReturnsError, 2, true)]
    [InlineData(Fault.ReturnsError, 2, false)]
    public async Task Failed_scans_follow_DenyOnError_after_the_retries(Fault fault, int retries, bool denyOnError)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree();
        var file = tree.File("data/file.txt", "content");
        var scanner = new FaultyScanner(fault);
        var options = new Config.OnAccessOptions
        {
            IncludePaths = [tree.Combine("data")],
            Prevention = true,
            RetryAttempts = retries,
            DenyOnError = denyOnError,
            ScanTimeout = ScanTimeout,
        };
        await using var h = await MonitorHarness.StartAsync(tree, options, scanner);

        var stopwatch = Stopwatch.StartNew();
        var result = await Child.CatAsync(file);
        stopwatch.Stop();

        Assert.Equal(denyOnError, Child.WasDenied(result));
        if (!denyOnError)
        {
            Assert.Equal("content", result.StdOut);
        }

        var decision = await h.WaitForPathAsync(file);
        Assert.Equal(denyOnError ? AccessDecision.Deny : AccessDecision.Allow, decision.Decision);
        Assert.Equal(ScanVerdict.Error, decision.Verdict);
        if (fault == Fault.Hangs)
        {
            Assert.Equal(DecisionReason.Timeout, decision.Reason);
            Assert.True(stopwatch.Elapsed < ScanTimeout + TimeSpan.FromSeconds(1), $"the open took {stopwatch.Elapsed.TotalMilliseconds} ms with a {ScanTimeout.TotalMilliseconds} ms deadline");
            Assert.Equal(1, scanner.Attempts); // the deadline covers the whole event, retries included
        }
        else
        {
            Assert.Equal(DecisionReason.ScanError, decision.Reason);
            Assert.Equal(1 + retries, scanner.Attempts);
        }
    }
}
