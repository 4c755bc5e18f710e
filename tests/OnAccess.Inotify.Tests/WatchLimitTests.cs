using OnAccess.Tests;

namespace OnAccess.Inotify.Tests;

/// <summary>
/// Tests that lower a machine-wide limit for a moment: alone, after every other test of the project (a churn test
/// running meanwhile found its own directories refused and reported them missed).
/// </summary>
[Collection(nameof(MachineLimitsCollection))]
public sealed class WatchLimitTests
{
    /// <summary>
    /// The kernel's watch limit: a directory made while fs.inotify.max_user_watches is reached is reported
    /// (WatchFailed, naming the limit) and watched once the limit is raised again.
    /// </summary>
    [Fact]
    public async Task A_directory_made_at_the_watch_limit_is_watched_once_the_limit_is_raised()
    {
        KernelTestSupport.RequireRoot();
        await using var h = TreeHarness.Start(configure: o => o.RetryInitialDelay = TimeSpan.FromMilliseconds(20));
        await h.QuiesceAsync();
        DirectoryTreeEvent failed;
        using (KernelTestSupport.SetSysctl("/proc/sys/fs/inotify/max_user_watches", KernelTestSupport.RootInotifyWatches().ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            Directory.CreateDirectory(h.P("late"));
            failed = await h.WaitForAsync(DirectoryTreeEventKind.WatchFailed, h.P("late"));
            Assert.Equal(1, h.DirectoryTree.UnprotectedCount);
        }

        Assert.Contains("max_user_watches", failed.Reason, StringComparison.Ordinal);
        await h.WaitForAsync(DirectoryTreeEventKind.ProtectionRestored, h.P("late"));
        Assert.Equal(0, h.DirectoryTree.UnprotectedCount);
        await h.AssertExactAsync();
    }
}

[CollectionDefinition(nameof(MachineLimitsCollection), DisableParallelization = true)]
public sealed class MachineLimitsCollection;
