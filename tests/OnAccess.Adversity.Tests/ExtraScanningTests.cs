using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Extra scanning opens what the tree holds, never what a name points at (issue 13, item 4): a symbolic link to a
/// root-only file outside the tree is not followed, a device node is never opened, and neither stops the tracking.
/// </summary>
public sealed class ExtraScanningTests
{
    [Fact]
    public async Task A_symbolic_link_to_a_root_only_file_outside_is_not_followed()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        var secret = tree.File("outside/secret.txt", "TOP-SECRET");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var scanner = new ContentRecorder();
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [data], ExtraScanning = true }, scanner);

        File.CreateSymbolicLink(Path.Combine(data, "link.txt"), secret);
        await scanner.SentinelAsync(data);

        Assert.DoesNotContain(scanner.Contents, c => c.Contains("TOP-SECRET", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_device_node_moved_into_the_tree_is_never_opened_and_tracking_goes_on()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        Directory.CreateDirectory(tree.Combine("outside"));
        var node = tree.Combine("outside", "null");
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/mknod", node, "c", "1", "3")).ExitCode);
        using var scanner = new ContentRecorder();
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [data], ExtraScanning = true }, scanner);

        using var watch = KernelTestSupport.Start("inotifywait", "-m", "-e", "open", node);
        try
        {
            while (await watch.StandardError.ReadLineAsync(TestContext.Current.CancellationToken) is { } line && !line.Contains("Watches established", StringComparison.Ordinal))
            {
            }

            File.Move(node, Path.Combine(data, "null"));
            await scanner.SentinelAsync(data);
            Directory.CreateDirectory(Path.Combine(data, "later"));
            await scanner.SentinelAsync(Path.Combine(data, "later"));

            await KernelTestSupport.RunAsync("/bin/kill", "-TERM", watch.Id.ToString(CultureInfo.InvariantCulture));
            var opens = await watch.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            Assert.Equal(string.Empty, opens);
        }
        finally
        {
            if (!watch.HasExited)
            {
                watch.Kill(); // a failure above must not leave it running (it held the build lock's descriptor once)
            }
        }
    }

    /// <summary>Records what every scan read through its descriptor.</summary>
    private sealed class ContentRecorder : IScanner, IDisposable
    {
        private readonly ConcurrentQueue<string> _contents = new();
        private readonly SemaphoreSlim _scanned = new(0);
        private int _sentinels;

        public IReadOnlyCollection<string> Contents => _contents;

        public ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken)
        {
            var buffer = new byte[4096];
            var n = RandomAccess.Read(request.File, buffer, 0);
            _contents.Enqueue(Encoding.UTF8.GetString(buffer, 0, n));
            _scanned.Release();
            return ValueTask.FromResult(ScanResult.Clean);
        }

        /// <summary>Creates a file with unique content in <paramref name="directory"/> and waits until a scan read it: everything before it was handled.</summary>
        public async Task SentinelAsync(string directory)
        {
            var mark = $"sentinel-{Interlocked.Increment(ref _sentinels)}-{Guid.NewGuid():N}";
            await File.WriteAllTextAsync(Path.Combine(directory, mark), mark);
            using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
            while (!_contents.Contains(mark))
            {
                await _scanned.WaitAsync(cts.Token);
            }
        }

        public void Dispose() => _scanned.Dispose();
    }
}
