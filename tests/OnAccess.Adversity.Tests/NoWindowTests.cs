using System.Globalization;
using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Issue 18: protection with no window. Directory marks are put as the tracker finds each directory, so what a user does
/// in a directory the moment it appears (or the moment it is moved in) goes unchecked; with tree marking 'filesystem'
/// one filesystem mark holds every open on the filesystem and the engine decides by where the file lies. Each race runs
/// as an unprivileged user (nobody), as an attacker's shell would, on a private tmpfs.
/// </summary>
public sealed class NoWindowTests
{
    private const int Tries = 1000;
    private const uint Nobody = 65534;

    [Fact]
    public async Task A_fresh_directory_read_from_at_once_never_yields_EICAR_with_a_filesystem_mark()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        await using var h = await MonitorHarness.StartAsync(tree, Options(p, TreeMarking.Filesystem), new EicarScanner());
        var reads = await CountAsNobodyAsync($"""
            mkdir -p "{p}/t$i/a" && cp "{eicar}" "{p}/t$i/a/e" 2>/dev/null; cat "{p}/t$i/a/e" >/dev/null 2>&1 && n=$((n+1))
            """);
        Assert.Equal(0, reads);
    }

    [Fact]
    public async Task A_directory_moved_in_after_an_open_outside_never_yields_EICAR_with_a_filesystem_mark()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        await using var h = await MonitorHarness.StartAsync(tree, Options(p, TreeMarking.Filesystem), new EicarScanner());
        var reads = await CountAsNobodyAsync($"""
            mkdir "{o}/m$i" && cp "{eicar}" "{o}/m$i/e" && cat "{o}/m$i/e" >/dev/null && mv "{o}/m$i" "{p}/m$i"; cat "{p}/m$i/e" >/dev/null 2>&1 && n=$((n+1))
            """);
        Assert.Equal(0, reads);
        Assert.True(h.Monitor.GetStatistics().OutsideOpens >= Tries, "each open outside was answered as outside");
    }

    /// <summary>
    /// A hard link made outside the tree to an infected file inside it: with directory marks the open through the
    /// link is not seen at all (the kernel asks only about children of marked directories), and EICAR is read; with a
    /// filesystem mark an outside file with more than one name is scanned, and denied.
    /// </summary>
    [Theory]
    [InlineData(TreeMarking.Directories, true)]
    [InlineData(TreeMarking.Filesystem, false)]
    public async Task A_hard_link_made_outside_the_tree_to_an_infected_file_inside(TreeMarking marking, bool read)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        var inside = Path.Combine(p, "in", "e");
        Directory.CreateDirectory(Path.GetDirectoryName(inside)!);
        File.Copy(eicar, inside);
        File.SetUnixFileMode(inside, (UnixFileMode)0b110_100_100);
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/chown", $"{Nobody}", inside)).ExitCode);
        await using var h = await MonitorHarness.StartAsync(tree, Options(p, marking), new EicarScanner());
        var result = await AsNobodyAsync($"""ln "{inside}" "{o}/link" && cat "{o}/link" """);
        Assert.Equal(read, result.StdOut.Contains("EICAR-STANDARD", StringComparison.Ordinal));
        Assert.Equal(!read, Child.WasDenied(result));
    }

    /// <summary>
    /// What the kernel may stop asking about: a directory only root can move (root's, writable by no one else, as is
    /// every directory above it) is ignored after its first open; a directory a user owns is not (they could move it
    /// into the tree: each open there is a round trip, answered at once).
    /// </summary>
    [Fact]
    public async Task Only_directories_no_user_can_move_into_the_tree_are_ignored_by_the_kernel()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        var rootOnly = Path.Combine(o, "root-only");
        Directory.CreateDirectory(rootOnly);
        File.SetUnixFileMode(rootOnly, (UnixFileMode)0b111_101_101);
        File.Copy(eicar, Path.Combine(rootOnly, "e"));
        var users = Path.Combine(o, "users");
        Directory.CreateDirectory(users);
        File.Copy(eicar, Path.Combine(users, "e"));
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/chown", "-R", $"{Nobody}", users)).ExitCode);
        await using var h = await MonitorHarness.StartAsync(tree, Options(p, TreeMarking.Filesystem), new EicarScanner());

        for (var i = 0; i < 3; i++)
        {
            Assert.True((await Child.CatAsync(Path.Combine(rootOnly, "e"))).ExitCode == 0); // outside: not protected
            Assert.True((await Child.CatAsync(Path.Combine(users, "e"))).ExitCode == 0);
        }

        var s = h.Monitor.GetStatistics();
        Assert.Equal(1, s.IgnoredOutsideDirectories);
        Assert.Equal(4, s.OutsideOpens); // root-only once (then ignored by the kernel), users' three times

        // The ignored directory moved in by root loses its ignore mark when the tracker sees it arrive.
        var moved = Path.Combine(p, "root-only");
        Directory.Move(rootOnly, moved);
        await h.WaitForMarksAsync(2); // P and the directory moved in
        Assert.True(Child.WasDenied(await Child.CatAsync(Path.Combine(moved, "e"))));
    }

    /// <summary>
    /// The blast radius: every open on the filesystem now depends on the monitor. A scanner that never returns holds
    /// an open inside the tree until its deadline; a shell working outside meanwhile is answered at once, and is done
    /// long before that deadline answers the open inside.
    /// </summary>
    [Fact]
    public async Task A_stalled_scanner_holds_only_the_open_inside_and_the_rest_of_the_filesystem_is_answered_at_once()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        var blocked = Path.Combine(p, "blocked");
        File.WriteAllText(blocked, "held");
        for (var i = 0; i < 100; i++)
        {
            File.WriteAllText(Path.Combine(o, $"f{i}"), "outside");
        }

        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/chown", "-R", $"{Nobody}", o)).ExitCode); // a user's: never ignored, each open a round trip
        using var scanner = new BlockingScanner(blocked);
        var options = Options(p, TreeMarking.Filesystem);
        options.ScanTimeout = TimeSpan.FromSeconds(4);
        await using var h = await MonitorHarness.StartAsync(tree, options, scanner);

        var held = Child.CatAsync(blocked);
        Assert.True(await scanner.Entered.WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken));
        var shell = await AsNobodyAsync($"""for f in "{o}"/f*; do cat "$f" >/dev/null || exit 1; done; ls -R "{o}" >/dev/null && mkdir "{o}/d" && echo x > "{o}/d/x" && cat "{o}/d/x" && echo done""");
        Assert.Contains("done", shell.StdOut, StringComparison.Ordinal);
        Assert.False(held.IsCompleted, "the shell outside finished while the open inside was still held by the stalled scan");
        var answer = await held.WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken); // the deadline answers it
        Assert.True(answer.ExitCode == 0); // OnAccessDenyOnError is off: allowed at the deadline
        Assert.True(h.Monitor.GetStatistics().Timeouts >= 1);
        scanner.Open();
    }

    private static OnAccessOptions Options(string p, TreeMarking marking) => new() { IncludePaths = [p], Prevention = true, TreeMarking = marking };

    /// <summary>A private tmpfs holding P (the include path) and O (outside it), both open to every user as /tmp is, and EICAR outside both.</summary>
    private static async Task<(string P, string O, string Eicar)> LayOutAsync(KernelTestSupport.TempTree tree)
    {
        File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
        var fs = await tree.MountTmpfsAsync("fs", "256m");
        var p = Path.Combine(fs, "P");
        var o = Path.Combine(fs, "O");
        Directory.CreateDirectory(p);
        Directory.CreateDirectory(o);
        File.SetUnixFileMode(p, (UnixFileMode)0b1_111_111_111);
        File.SetUnixFileMode(o, (UnixFileMode)0b1_111_111_111);
        var eicar = Path.Combine(fs, "eicar.com");
        File.WriteAllText(eicar, EicarScanner.Eicar);
        File.SetUnixFileMode(eicar, (UnixFileMode)0b110_100_100);
        return (p, o, eicar);
    }

    /// <summary>Runs <paramref name="body"/> <see cref="Tries"/> times (with $i set) in one shell as nobody; returns its $n.</summary>
    private static async Task<int> CountAsNobodyAsync(string body)
    {
        var result = await AsNobodyAsync($"n=0; i=0; while [ $i -lt {Tries} ]; do i=$((i+1)); {body}; done; echo \"count $n\"", TimeSpan.FromSeconds(240));
        var line = result.StdOut.Split('\n').Single(l => l.StartsWith("count ", StringComparison.Ordinal));
        return int.Parse(line["count ".Length..], CultureInfo.InvariantCulture);
    }

    private static Task<KernelTestSupport.ChildResult> AsNobodyAsync(string script, TimeSpan? timeout = null) =>
        KernelTestSupport.RunAsync("/usr/bin/setpriv", [$"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", "/bin/sh", "-c", script], timeout ?? KernelTestSupport.Timeout);
}
