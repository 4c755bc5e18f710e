using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Marks follow directories, not paths (issue 12, item 1; issue 13, item 1): what was marked is what is unmarked,
/// whatever happened to its path, and no name an attacker chooses (a swapped-in symbolic link, bytes that are not
/// UTF-8, a path deeper than PATH_MAX) leaves a directory of the tree unprotected or marks one outside it.
/// </summary>
public sealed class MarkTests
{
    [Fact]
    public async Task A_directory_moved_into_the_place_of_one_moved_out_is_protected_and_the_one_moved_out_is_not()
    {
        KernelTestSupport.RequireRoot();
        const int Pairs = 50;
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var p = tree.Combine("P");
        var o = tree.Combine("O");
        Directory.CreateDirectory(o);
        for (var i = 0; i < Pairs; i++)
        {
            tree.File($"P/A{i}/eicar.com", EicarScanner.Eicar);
            tree.File($"P/B{i}/eicar.com", EicarScanner.Eicar);
        }

        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [p], Prevention = true }, new EicarScanner());

        // The repro of the issue: mv P/A O/A && mv P/B P/A, fifty times.
        for (var i = 0; i < Pairs; i++)
        {
            Directory.Move(Path.Combine(p, $"A{i}"), Path.Combine(o, $"A{i}"));
            Directory.Move(Path.Combine(p, $"B{i}"), Path.Combine(p, $"A{i}"));
        }

        await Settled.WaitAsync(p);
        var inside = await Attacker.OpenAsync(Enumerable.Range(0, Pairs).Select(i => Path.Combine(p, $"A{i}", "eicar.com")));
        var outside = await Attacker.OpenAsync(Enumerable.Range(0, Pairs).Select(i => Path.Combine(o, $"A{i}", "eicar.com")));
        Assert.Empty(inside.Where(x => !x.Value.Denied).Select(x => $"{x.Key}: {x.Value}"));
        Assert.Empty(outside.Where(x => !x.Value.Opened).Select(x => $"{x.Key}: {x.Value}"));
    }

    /// <summary>
    /// The churn storm: random mkdir, renames inside, moves out and back in, and removals. Afterwards the marked
    /// inodes (the kernel's own list, from the group's fdinfo) are exactly the tree's directories; EICAR is denied in
    /// every directory of the tree and allowed in every directory that was moved out. With a tiny inotify queue, the
    /// storm overflows it many times and the tracker rebuilds from the roots.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task After_a_churn_storm_the_marked_inodes_are_exactly_the_tree_s_directories(bool overflow)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs"); // a private tmpfs, as an attacker's would be: no disk in the way
        var root = Path.Combine(fs, "root");
        var outside = Path.Combine(fs, "out");
        Directory.CreateDirectory(outside);
        for (var i = 0; i < 100; i++)
        {
            Directory.CreateDirectory(Path.Combine(root, $"d{i % 10}", $"e{i}"));
        }

        MonitorHarness h;
        using (overflow ? KernelTestSupport.SetSysctl("/proc/sys/fs/inotify/max_queued_events", "256") : null)
        {
            h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());
        }

        await using (h)
        {
            var ops = Soak.Scale(100_000, 30);
            var churn = await Attacker.RunAsync(TimeSpan.FromSeconds(Soak.Seconds(30) * 4), "churn", root, outside, ops.ToString(System.Globalization.CultureInfo.InvariantCulture), overflow ? "2" : "1");
            Assert.StartsWith("ops ", churn.StdOut, StringComparison.Ordinal);

            await Settled.WaitAsync(root);
            var expected = await Kernel.DirectoryInodesAsync(root);
            await Settled.UntilAsync(() => Kernel.MarkedInodes().SetEquals(expected), TimeSpan.FromSeconds(5));
            var marked = Kernel.MarkedInodes();
            Assert.True(!overflow || h.Monitor.GetStatistics().Overflows > 0, "the inotify queue never overflowed");
            Assert.True(marked.SetEquals(expected), $"{expected.Except(marked).Count()} of {expected.Count} directories unmarked, {marked.Except(expected).Count()} marked inodes outside the tree: {await Kernel.DescribeAsync(fs, marked.Except(expected).Concat(expected.Except(marked)))}; the tracker holds {h.Monitor.Engine?.Tree?.DirectoryCount} directories, {h.Monitor.GetStatistics().GroupRestarts} group restarts; tracked where nothing is: {string.Join(" ", h.Monitor.Engine?.Tree?.GetDirectories().Where(d => !Directory.Exists(d)).Take(5) ?? [])}");

            var random = new Random(7);
            var insideDirs = Directory.GetDirectories(root, "*", SearchOption.AllDirectories).Append(root).OrderBy(_ => random.Next()).Take(200).ToList();
            var outsideDirs = Directory.GetDirectories(outside, "*", SearchOption.AllDirectories).OrderBy(_ => random.Next()).Take(200).ToList();
            Assert.True(outsideDirs.Count >= 50, $"only {outsideDirs.Count} directories were moved out");
            var files = insideDirs.Concat(outsideDirs).Select(d => Path.Combine(d, "eicar.com")).ToList();
            foreach (var f in files)
            {
                File.WriteAllBytes(f, Samples.Eicar);
            }

            var opened = await Attacker.OpenAsync(files);
            Assert.DoesNotContain(insideDirs, d => !opened[Path.Combine(d, "eicar.com")].Denied);
            Assert.DoesNotContain(outsideDirs, d => !opened[Path.Combine(d, "eicar.com")].Opened);
        }
    }

    [Fact]
    public async Task Directories_whose_names_are_not_UTF8_are_protected()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var root = tree.Combine("root");
        Directory.CreateDirectory(root);
        var eicar = tree.File("eicar.src", EicarScanner.Eicar);
        await Attacker.RunAsync("mkdir", root + "/before\\xff/sub"); // there before the monitor starts
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());

        await Attacker.RunAsync("mkdir", root + "/bad\\xff/sub/deeper");
        await Attacker.RunAsync("mkdir", root + "/\\xc3\\x28\\x0a\\x1b[2J/x");
        await Settled.WaitAsync(root);
        string[] files = [root + "/before\\xff/e.com", root + "/before\\xff/sub/e.com", root + "/bad\\xff/e.com", root + "/bad\\xff/sub/deeper/e.com", root + "/\\xc3\\x28\\x0a\\x1b[2J/x/e.com"];
        foreach (var f in files)
        {
            await Attacker.RunAsync("write", f, eicar);
        }

        var outcomes = await Attacker.OpenAsync(files);
        Assert.Empty(outcomes.Where(x => !x.Value.Denied).Select(x => $"{x.Key}: {x.Value}"));
    }

    [Fact]
    public async Task A_directory_deeper_than_PATH_MAX_is_protected()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var root = tree.Combine("root");
        Directory.CreateDirectory(root);
        var eicar = tree.File("eicar.src", EicarScanner.Eicar);
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());

        // 20 levels of 250-byte names: the file's path is over 5,000 bytes (PATH_MAX is 4,096).
        var made = await Attacker.RunAsync("deep", root, "20", "250", eicar);
        Assert.True(int.Parse(made.StdOut.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) > 4096, made.StdOut);
        await Settled.WaitAsync(root);
        var opened = await Attacker.RunAsync("deepopen", root, "20", "250");
        Assert.StartsWith("DENIED", opened.StdOut, StringComparison.Ordinal);
    }

    /// <summary>
    /// A directory with 20,000 subdirectories is moved into the tree and, while the tracker walks it, replaced by a
    /// symbolic link to a directory outside with the same subdirectory names. Nothing outside may be marked (before:
    /// the walk resolved path strings through the link and marked the target's directories).
    /// </summary>
    [Fact]
    public async Task A_symbolic_link_swapped_in_during_a_walk_gets_nothing_outside_the_tree_marked()
    {
        KernelTestSupport.RequireRoot();
        const int Subdirectories = 20_000;
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var root = tree.Combine("root");
        var staging = tree.Combine("staging");
        var target = tree.Combine("target");
        Directory.CreateDirectory(root);
        for (var i = 0; i < Subdirectories; i++)
        {
            Directory.CreateDirectory(Path.Combine(staging, "big", $"s{i}"));
            Directory.CreateDirectory(Path.Combine(target, $"s{i}"));
        }

        File.WriteAllBytes(Path.Combine(target, "s19999", "eicar.com"), Samples.Eicar);
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [root], Prevention = true }, new EicarScanner());

        // The walk of 20,000 directories is under way (100 marked) when the link replaces the directory; the link is
        // gone again 300 ms later (the attacker's timing), before the tracker learns that the directory moved away.
        var marked = h.Monitor.GetStatistics().MarkedDirectories;
        Directory.Move(Path.Combine(staging, "big"), Path.Combine(root, "big"));
        await Settled.UntilAsync(() => h.Monitor.GetStatistics().MarkedDirectories > marked + 100, KernelTestSupport.Timeout);
        Directory.Move(Path.Combine(root, "big"), Path.Combine(staging, "big"));
        File.CreateSymbolicLink(Path.Combine(root, "big"), target);
        await Task.Delay(300, TestContext.Current.CancellationToken); // the attack's window, not a wait for a state
        File.Delete(Path.Combine(root, "big"));

        await Settled.WaitAsync(root);
        var outsideInodes = await Kernel.DirectoryInodesAsync(target);
        outsideInodes.UnionWith(await Kernel.DirectoryInodesAsync(staging));
        var markedOutside = Kernel.MarkedInodes().Intersect(outsideInodes).Count();
        Assert.Equal(0, markedOutside);
        Assert.True((await Attacker.OpenAsync(Path.Combine(target, "s19999", "eicar.com"))).Opened);
    }
}
