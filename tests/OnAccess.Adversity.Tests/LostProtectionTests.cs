using System.Globalization;
using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Protection lost is never silent and never permanent (issue 12, item 4): with inotify's watch limit lowered while
/// directories are created, those directories are counted as unprotected while the limit holds, retried, and all
/// protected once it is raised again.
/// </summary>
public sealed class LostProtectionTests
{
    [Fact]
    public async Task Directories_made_while_the_watch_limit_is_reached_are_protected_once_it_is_raised()
    {
        KernelTestSupport.RequireRoot();
        const int Made = 60;
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var root = tree.Combine("root");
        for (var i = 0; i < 5; i++)
        {
            Directory.CreateDirectory(Path.Combine(root, $"before{i}"));
        }

        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());
        var files = new List<string>();
        using (KernelTestSupport.SetSysctl("/proc/sys/fs/inotify/max_user_watches", KernelTestSupport.RootInotifyWatches().ToString(CultureInfo.InvariantCulture)))
        {
            for (var i = 0; i < Made; i++)
            {
                var dir = Path.Combine(root, $"made{i}", "sub");
                Directory.CreateDirectory(dir);
                var file = Path.Combine(dir, "eicar.com");
                File.WriteAllBytes(file, Samples.Eicar);
                files.Add(file);
            }

            // Each directory made is refused while the limit holds, and counted.
            await Settled.UntilAsync(() => h.Monitor.GetStatistics().UnprotectedDirectories >= Made, KernelTestSupport.Timeout);
            Assert.True(h.Monitor.GetStatistics().UnprotectedDirectories >= Made, $"{h.Monitor.GetStatistics().UnprotectedDirectories} of the {Made} directories the limit refused are counted");
            Assert.True(h.Monitor.GetStatistics().Degraded);
        }

        await Settled.UntilAsync(async () => (await Attacker.OpenAsync(files)).Values.All(o => o.Denied), TimeSpan.FromSeconds(15));
        var outcomes = await Attacker.OpenAsync(files);
        Assert.Empty(outcomes.Where(x => !x.Value.Denied).Select(x => $"{x.Key}: {x.Value}"));
        Assert.Equal(0, h.Monitor.GetStatistics().UnprotectedDirectories);
        Assert.True((await Kernel.DirectoryInodesAsync(root)).IsSubsetOf(Kernel.MarkedInodes()));
    }

    /// <summary>
    /// When the watch limit stops start-up, the message says how many directories the roots need, all of them: before,
    /// it counted only the subtree of the directory that failed (97 where 501 were needed).
    /// </summary>
    [Fact]
    public async Task Start_up_at_the_watch_limit_names_every_directory_the_roots_need()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var root = tree.Combine("root");
        for (var i = 0; i < 500; i++)
        {
            Directory.CreateDirectory(Path.Combine(root, $"d{i / 50}", $"e{i}"));
        }

        // 1 + 10 + 500 = 511 directories; the limit lets 100 more watches be added than are in use now.
        using (KernelTestSupport.SetSysctl("/proc/sys/fs/inotify/max_user_watches", (KernelTestSupport.RootInotifyWatches() + 100).ToString(CultureInfo.InvariantCulture)))
        {
            var monitor = new OnAccessMonitor(new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());
            var e = await Assert.ThrowsAnyAsync<IOException>(() => monitor.StartAsync(CancellationToken.None));
            Assert.Contains("the roots need 511 directories watched", e.Message, StringComparison.Ordinal);
            Assert.Contains("fs.inotify.max_user_watches", e.Message, StringComparison.Ordinal);
            await monitor.DisposeAsync();
        }

        tree.Dispose();
    }
}
