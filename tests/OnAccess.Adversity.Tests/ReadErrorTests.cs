using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Per-event errors never end protection (issue 13, item 5). read(2) on a fanotify group fails with whatever opening
/// the event's file failed with (EIO on FUSE or a network filesystem, ENXIO, EINVAL, ...): one event is lost (the
/// kernel denies it), the group and every mark stay. These errnos cannot be made on demand on a local filesystem, so
/// the group is told to fail its next read with them (the same path a real failure takes from read(2) on); EMFILE,
/// which can be made for real, is covered by the Fanotify tests.
/// </summary>
public sealed class ReadErrorTests
{
    [Theory]
    [InlineData(5)] // EIO
    [InlineData(22)] // EINVAL
    [InlineData(6)] // ENXIO
    [InlineData(116)] // ESTALE
    public async Task A_read_error_loses_one_event_and_protection_stays(int errno)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var data = tree.Combine("data");
        var clean = tree.File("data/clean.txt", "clean");
        var eicar = tree.File("data/eicar.com", EicarScanner.Eicar);
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [data], Prevention = true }, new EicarScanner());

        h.Monitor.Engine!.CurrentGroup!.InjectReadFailure(errno);
        Assert.True((await Attacker.OpenAsync(clean)).Opened); // wakes the reader: the failure comes first, then this open
        await Settled.UntilAsync(() => h.Monitor.GetStatistics().KernelDenied >= 1, KernelTestSupport.Timeout);

        Assert.True((await Attacker.OpenAsync(eicar)).Denied);
        Assert.True((await Attacker.OpenAsync(clean)).Opened);
        var statistics = h.Monitor.GetStatistics();
        Assert.Equal(1, statistics.KernelDenied);
        Assert.Equal(0, statistics.GroupRestarts);
    }
}
