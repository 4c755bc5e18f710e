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
            mkdir "{o}/m$i" && cp "{eicar}" "{o}/m$i/e"; cat "{o}/m$i/e" >/dev/null 2>&1; mv "{o}/m$i" "{p}/m$i"; cat "{p}/m$i/e" >/dev/null 2>&1 && n=$((n+1))
            """);
        Assert.Equal(0, reads);
        Assert.Equal(Tries, Directory.GetDirectories(p, "m*").Length); // every directory was opened outside, then moved in
        Assert.Equal(0, h.Monitor.GetStatistics().IgnoredOutsideDirectories); // a user's directories: never ignored
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
    /// What the kernel may stop asking about: a directory no user can change (root's, writable by no one else, and no
    /// directory above it a user can move) is allowed unscanned and ignored after its first open. A directory a user
    /// owns, or one open to all (O, as /tmp), is scanned like the tree: a user could have moved a file (or a directory)
    /// out of the tree into it after opening it there. An ignored directory root moves into the tree loses its mark
    /// when the tracker sees it arrive.
    /// </summary>
    [Fact]
    public async Task Only_directories_no_user_can_change_are_outside_and_ignored_by_the_kernel()
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
        File.Copy(eicar, Path.Combine(o, "e"));
        await using var h = await MonitorHarness.StartAsync(tree, Options(p, TreeMarking.Filesystem), new EicarScanner());

        for (var i = 0; i < 3; i++)
        {
            Assert.True((await Child.CatAsync(Path.Combine(rootOnly, "e"))).ExitCode == 0); // outside, root's: not protected
            Assert.True(Child.WasDenied(await Child.CatAsync(Path.Combine(users, "e"))));
            Assert.True(Child.WasDenied(await Child.CatAsync(Path.Combine(o, "e"))));
        }

        var s = h.Monitor.GetStatistics();
        Assert.Equal(1, s.IgnoredOutsideDirectories);
        Assert.Equal(1, s.OutsideOpens); // root-only once, then ignored by the kernel

        var moved = Path.Combine(p, "root-only");
        Directory.Move(rootOnly, moved);
        await h.WaitForMarksAsync(2); // P and the directory moved in
        Assert.True(Child.WasDenied(await Child.CatAsync(Path.Combine(moved, "e"))));
    }

    /// <summary>
    /// Helper-found hole: a hard link made in a directory open to all (O, as /tmp) after a file there was opened (which
    /// used to ignore O): the link's open was never seen. A directory users can add names to is never ignored now.
    /// </summary>
    [Fact]
    public async Task A_hard_link_made_in_a_directory_open_to_all_after_an_open_there_is_scanned()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        await using var h = await MonitorHarness.StartAsync(tree, Options(p, TreeMarking.Filesystem), new EicarScanner());
        var result = await AsNobodyAsync($"""cp "{eicar}" "{p}/e1"; echo hi > "{o}/plain"; cat "{o}/plain" >/dev/null; ln "{p}/e1" "{o}/link1" && cat "{o}/link1" """);
        Assert.DoesNotContain("EICAR-STANDARD", result.StdOut, StringComparison.Ordinal);
        Assert.True(Child.WasDenied(result), result.StdErr);
        Assert.Equal(0, h.Monitor.GetStatistics().IgnoredOutsideDirectories);
    }

    /// <summary>
    /// Helper-found hole: the place of an open is read after it, so a user flipping their file between P/x and O/x
    /// while another process opens P/x had the opens whose path was read with the file in O allowed unscanned (17,539
    /// EICAR reads in 10 s). An open outside is allowed only in a directory no user can move a file into.
    /// </summary>
    [Fact]
    public async Task A_file_flipped_in_and_out_of_the_tree_while_it_is_opened_is_never_read_infected()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        var inside = Path.Combine(p, "x");
        var outside = Path.Combine(o, "x");
        await using var h = await MonitorHarness.StartAsync(tree, Options(p, TreeMarking.Filesystem), new EicarScanner());
        Assert.Equal(0, (await AsNobodyAsync($"""cp "{eicar}" "{outside}" """)).ExitCode);
        var (read, denied) = await FlipAndOpenAsync(outside, inside);
        Assert.True(denied > 100, $"the race ran: {denied} opens denied");
        Assert.True(read == 0, string.Join("\n", h.Events.Where(e => e.Decision == AccessDecision.Allow).Select(e => $"{e.Path} {e.Reason}")));
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
        Assert.Equal(DecisionReason.Timeout, (await h.WaitForPathAsync(blocked)).Reason); // reported after the answer
        scanner.Open();
    }

    /// <summary>
    /// Helper-found hole, older than tree marking: an exclusion was told by the path read after the open, so a user
    /// flipping their file between an excluded directory and the tree while another process opened it in the tree had
    /// every open whose path was read in the excluded place allowed unscanned (33,315 EICAR reads in 8 s). With one
    /// filesystem mark an exclusion now holds only where no user can have moved the file since the open (a directory
    /// only root can change); elsewhere below it files are scanned. (With directory marks the kernel itself decides by
    /// the directory the file is in when it asks, which a rename racing the open can change: 553 reads in 3 s here,
    /// the limit of that marking, documented.)
    /// </summary>
    [Fact]
    public async Task A_file_flipped_between_an_excluded_directory_and_the_tree_is_never_read_infected_with_a_filesystem_mark()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        var excluded = Path.Combine(p, "ex");
        var options = Options(p, TreeMarking.Filesystem);
        options.ExcludePaths = [excluded];
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());
        Assert.Equal(0, (await AsNobodyAsync($"""mkdir "{excluded}" && cp "{eicar}" "{excluded}/x" """)).ExitCode);
        var (read, denied) = await FlipAndOpenAsync(Path.Combine(excluded, "x"), Path.Combine(p, "x"));
        Assert.True(denied > 100, $"the race ran: {denied} opens denied");
        Assert.Equal(0, read);
    }

    /// <summary>
    /// An exclusion below an include path that is its filesystem's root (kept from one filesystem mark of its own by
    /// the exclusion, OA1022, so held as a subtree): a root-only excluded directory's files are allowed unscanned, the
    /// rest of the tree is scanned. (Its place within the filesystem was once joined as "//ex", excluding nothing.)
    /// </summary>
    [Fact]
    public async Task An_exclusion_below_a_filesystem_s_root_holds_in_a_directory_only_root_can_change()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        var fs = Path.GetDirectoryName(p)!;
        var excluded = Path.Combine(fs, "ex");
        Directory.CreateDirectory(excluded);
        File.SetUnixFileMode(excluded, (UnixFileMode)0b111_101_101);
        File.Copy(eicar, Path.Combine(excluded, "e"));
        File.Copy(eicar, Path.Combine(p, "e"));
        var options = Options(fs, TreeMarking.Filesystem);
        options.ExcludePaths = [excluded];
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());
        Assert.Equal(RootMarking.FilesystemSubtree, Assert.Single(h.Monitor.Plan!.Roots).Marking);
        Assert.Equal(EicarScanner.Eicar, (await Child.CatAsync(Path.Combine(excluded, "e"))).StdOut);
        Assert.Equal(DecisionReason.ExcludedPath, (await h.WaitForPathAsync(Path.Combine(excluded, "e"))).Reason);
        Assert.True(Child.WasDenied(await Child.CatAsync(Path.Combine(p, "e"))));
    }

    /// <summary>
    /// Helper-found gap: a file of a user's in a root-only excluded directory, given a second name in the tree and
    /// infected there, was read unscanned through its excluded name. An excluded file with another name is scanned.
    /// </summary>
    [Fact]
    public async Task An_excluded_file_with_another_name_in_the_tree_is_scanned()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        var excluded = Path.Combine(p, "ex");
        Directory.CreateDirectory(excluded);
        File.SetUnixFileMode(excluded, (UnixFileMode)0b111_101_101);
        var theirs = Path.Combine(excluded, "theirs");
        File.WriteAllText(theirs, string.Empty);
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/chown", $"{Nobody}", theirs)).ExitCode);
        var options = Options(p, TreeMarking.Filesystem);
        options.ExcludePaths = [excluded];
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());
        Assert.Equal(0, (await AsNobodyAsync($"""ln "{theirs}" "{p}/l1" && cat "{eicar}" > "{p}/l1" """)).ExitCode);
        Assert.True(Child.WasDenied(await AsNobodyAsync($"""cat "{p}/l1" """)));
        Assert.True(Child.WasDenied(await AsNobodyAsync($"""cat "{theirs}" """)));
    }

    /// <summary>
    /// Helper-found hole: a directory no user can add a name to was ignored by the kernel after one open in it, though
    /// a file in it was writable by all (root's, 0666): a user linked it into the tree (fs.protected_hardlinks allows
    /// it to one who may read and write it), wrote EICAR there, and read it through its ignored name outside. A
    /// directory is ignored only when no user can change a file in it.
    /// </summary>
    [Fact]
    public async Task A_directory_holding_a_file_users_may_write_is_not_ignored()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        var ro = Path.Combine(Path.GetDirectoryName(p)!, "R", "ro");
        Directory.CreateDirectory(ro);
        File.SetUnixFileMode(Path.GetDirectoryName(ro)!, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(ro, (UnixFileMode)0b111_101_101);
        var shared = Path.Combine(ro, "w");
        File.WriteAllText(shared, "shared");
        File.SetUnixFileMode(shared, (UnixFileMode)0b110_110_110);
        File.WriteAllText(Path.Combine(ro, "s"), "sibling");
        await using var h = await MonitorHarness.StartAsync(tree, Options(p, TreeMarking.Filesystem), new EicarScanner());

        Assert.Equal("sibling", (await Child.CatAsync(Path.Combine(ro, "s"))).StdOut); // outside, root's: allowed
        Assert.Equal(0, h.Monitor.GetStatistics().IgnoredOutsideDirectories);
        Assert.Equal(0, (await AsNobodyAsync($"""ln "{shared}" "{p}/hl" && cat "{eicar}" > "{p}/hl" """)).ExitCode);
        Assert.True(Child.WasDenied(await Child.CatAsync(shared)));
    }

    /// <summary>
    /// Helper-found hole: the monitor looked the opener's path up again (statx) on the thread every open waits for. A
    /// user with a namespace of their own bind-mounts a protected file at a path that, in the monitor's namespace, runs
    /// through a FUSE mount that never answers (any user can make one with fusermount where /dev/fuse is 0666): the
    /// reading thread hung in the lookup and every open on the filesystem with it. With an exclusion configured the
    /// same lookup ran in every marking. The path is now believed by its mount alone and never looked up.
    /// </summary>
    [Theory]
    [InlineData(TreeMarking.Filesystem)]
    [InlineData(TreeMarking.Directories)]
    public async Task A_path_through_a_FUSE_mount_that_never_answers_holds_nothing(TreeMarking marking)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        var plain = Path.Combine(p, "plain");
        File.WriteAllText(plain, "plain");
        File.SetUnixFileMode(plain, (UnixFileMode)0b110_100_100);
        var infected = Path.Combine(p, "eicar.com");
        File.Copy(eicar, infected);
        var hung = tree.Combine("hung");
        Directory.CreateDirectory(hung);
        var options = Options(p, marking);
        options.ExcludePaths = [Path.Combine(p, "excluded")];
        await using var h = await MonitorHarness.StartAsync(tree, options, new EicarScanner());

        await using var fuse = await HungFuse.MountAsync(hung, directory: true);
        try
        {
            // In the user's namespace: the filesystem bound at /mnt, a tmpfs over the tree (hiding the FUSE mount),
            // and the protected file bound at TREE/hung/a/evil, which in the monitor's namespace lies in the FUSE mount.
            var attack = KernelTestSupport.RunAsync("/usr/bin/setpriv", [$"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", "/usr/bin/unshare", "-Urm", "/bin/sh", "-c",
                $"""mount --bind "{Path.GetDirectoryName(p)}" /mnt && mount -t tmpfs t "{tree.Path}" && mkdir -p "{hung}/a" && touch "{hung}/a/evil" && mount --bind /mnt/P/plain "{hung}/a/evil" && cat "{hung}/a/evil" """], TimeSpan.FromSeconds(15));
            var root = KernelTestSupport.RunAsync("/bin/cat", infected);
            Assert.True(await Task.WhenAll(attack, root).WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken).ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default), "opens were held behind a lookup in the FUSE mount");
            Assert.Equal("plain", (await attack).StdOut);
            Assert.True(Child.WasDenied(await root));
        }
        finally
        {
            await fuse.DisposeAsync(); // before the monitor stops: a lookup still waiting in it fails
        }
    }

    /// <summary>
    /// Helper-found hole (root-helped): the check that an outside file is in its directory looked its name up with
    /// statx, which enters a mount covering that name. A user holding the file by an O_PATH descriptor from before root
    /// covered it with a FUSE mount that never answers reopened it: the reading thread hung in the lookup. Names are
    /// now looked up with openat2 RESOLVE_NO_XDEV (a covered name is not entered: the file is scanned).
    /// </summary>
    [Fact]
    public async Task A_name_covered_by_a_FUSE_mount_that_never_answers_holds_nothing()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var (p, o, eicar) = await LayOutAsync(tree);
        var ro = Path.Combine(Path.GetDirectoryName(p)!, "R");
        Directory.CreateDirectory(ro);
        File.SetUnixFileMode(ro, (UnixFileMode)0b111_101_101);
        var covered = Path.Combine(ro, "f");
        File.WriteAllText(covered, "under");
        File.SetUnixFileMode(covered, (UnixFileMode)0b110_100_100);
        var infected = Path.Combine(p, "eicar.com");
        File.Copy(eicar, infected);
        await using var h = await MonitorHarness.StartAsync(tree, Options(p, TreeMarking.Filesystem), new EicarScanner());

        // The user holds the file by an O_PATH descriptor, then (told to) reopens it through /proc/self/fd.
        using var user = new System.Diagnostics.Process
        {
            StartInfo = new("/usr/bin/setpriv") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false },
        };
        foreach (var a in new[] { $"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", "/usr/bin/python3", "-c",
            $"import os, sys\nfd = os.open('{covered}', os.O_PATH)\nprint('held', flush=True)\nsys.stdin.readline()\nprint(os.read(os.open(f'/proc/self/fd/{{fd}}', os.O_RDONLY), 100).decode(), flush=True)\n" })
        {
            user.StartInfo.ArgumentList.Add(a);
        }

        user.Start();
        Assert.Equal("held", await user.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken));
        await using var fuse = await HungFuse.MountAsync(covered, directory: false);
        try
        {
            await user.StandardInput.WriteLineAsync("go");
            await user.StandardInput.FlushAsync(TestContext.Current.CancellationToken);
            var reopened = user.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken).AsTask();
            var root = KernelTestSupport.RunAsync("/bin/cat", infected);
            var done = await Task.WhenAll(reopened, root).WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken).ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default);
            Assert.True(done, "opens were held behind a lookup in the FUSE mount");
            Assert.Equal("under", await reopened);
            Assert.True(Child.WasDenied(await root));
        }
        finally
        {
            await fuse.DisposeAsync();
            if (!user.HasExited)
            {
                user.Kill();
            }
        }
    }

    /// <summary>
    /// For 4 s a user (nobody) renames their file from <paramref name="first"/> to <paramref name="second"/> and back,
    /// while root opens <paramref name="second"/> for 3 s: how many opens read EICAR, and how many were denied.
    /// </summary>
    private static async Task<(int Read, int Denied)> FlipAndOpenAsync(string first, string second)
    {
        using var flipper = KernelTestSupport.Start(
            "/usr/bin/setpriv", $"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", "/usr/bin/python3", "-c",
            $"import os, time\nend = time.monotonic() + 4\nwhile time.monotonic() < end:\n    os.rename('{first}', '{second}')\n    os.rename('{second}', '{first}')\n");
        var victim = await KernelTestSupport.RunAsync("/usr/bin/python3", "-c", $$"""
            import time
            end, read, denied = time.monotonic() + 3, 0, 0
            while time.monotonic() < end:
                try:
                    with open('{{second}}', 'rb') as f:
                        read += b'EICAR-STANDARD' in f.read()
                except PermissionError:
                    denied += 1
                except FileNotFoundError:
                    pass
            print(read, denied)
            """);
        await flipper.WaitForExitAsync(TestContext.Current.CancellationToken);
        var counts = victim.StdOut.Split(' ', StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        return (counts[0], counts[1]);
    }

    private static OnAccessOptions Options(string p, TreeMarking marking) => new() { IncludePaths = [p], Prevention = true, TreeMarking = marking };

    /// <summary>A private tmpfs holding P (the include path) and O (outside it), both open to every user as /tmp is, and EICAR on another filesystem.</summary>
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
        var eicar = tree.Combine("eicar.com"); // on another filesystem: its reads are nobody's business here
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

    /// <summary>A FUSE mount (as root) whose server never answers, not even its INIT: every lookup in it waits, until it goes.</summary>
    private sealed class HungFuse : IAsyncDisposable
    {
        private readonly System.Diagnostics.Process _server;
        private readonly string _target;
        private bool _disposed;

        private HungFuse(System.Diagnostics.Process server, string target) => (_server, _target) = (server, target);

        /// <summary>Mounts it on <paramref name="target"/>, a directory or (with <paramref name="directory"/> false) a file.</summary>
        public static async Task<HungFuse> MountAsync(string target, bool directory)
        {
            var options = directory ? "rootmode=40000,user_id=0,group_id=0" : "rootmode=100644,user_id=0,group_id=0,allow_other";
            var server = KernelTestSupport.Start("/usr/bin/python3", "-c", $$"""
                import os, subprocess, time
                fd = os.open('/dev/fuse', os.O_RDWR)
                subprocess.run(['/bin/mount', '-i', '-t', 'fuse', '-o', f'fd={fd},{{options}}', 'hung', '{{target}}'], pass_fds=[fd], check=True)
                print('mounted', flush=True)
                time.sleep(60)
                """);
            var fuse = new HungFuse(server, target);
            try
            {
                Assert.Equal("mounted", await server.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken));
                return fuse;
            }
            catch
            {
                await fuse.DisposeAsync();
                throw;
            }
        }

        /// <summary>Its server killed (its /dev/fuse descriptor closes: the connection aborts, and a lookup still waiting fails), then unmounted.</summary>
        public async ValueTask DisposeAsync()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _server.Kill();
            await _server.WaitForExitAsync(CancellationToken.None);
            _server.Dispose();
            await KernelTestSupport.RunAsync("/bin/umount", "-l", _target);
        }
    }
}
