using System.Security.Cryptography;
using System.Text;
using OnAccess.Config;
using OnAccess.Core.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Acting on a detection (issue 17), with real files on tmpfs filesystems: move, copy and remove in both modes; restore
/// with owner and mode; a quarantine on another filesystem, and one that is full; file names an attacker chose run
/// through VirusEvent and the quarantine; the path swapped between the scan and the action; a flood of detections
/// against a slow action.
/// </summary>
public sealed class ActionTests
{
    private static readonly string Sha256OfEicar = Convert.ToHexStringLower(SHA256.HashData(Samples.Eicar));

    [Fact]
    public async Task Move_stores_the_scanned_content_removes_the_original_and_restore_puts_it_back_with_owner_and_mode()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs");
        var quarantine = Path.Combine(await tree.MountTmpfsAsync("q"), "store"); // another filesystem
        var file = Infected(fs, "data/sub/eicar.com", owner: "nobody", mode: 0b110_100_000);
        using var store = new QuarantineStore(quarantine);
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [Path.Combine(fs, "data")], Prevention = true }, new EicarScanner(), actions: [new QuarantineAction(store, QuarantineMode.Move)]);

        Assert.True((await Attacker.OpenAsync(file)).Denied);
        var done = Assert.Single(await h.WaitForActionsAsync(a => a.Action == "quarantine"));
        Assert.Equal(DetectionActionOutcome.Done, done.Outcome);
        Assert.False(File.Exists(file));
        var entry = Assert.Single(store.List());
        Assert.Equal(done.Id, entry.Id);
        Assert.Equal((file, 65534u, 0b110_100_000u, Sha256OfEicar, "move", true), (entry.OriginalPath, entry.Uid, entry.Mode, entry.Sha256, entry.Action, entry.OriginalRemoved));
        Assert.Equal("Eicar-Test-Signature", entry.Threat);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(quarantine));
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(Path.Combine(quarantine, entry.Id + ".data")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(quarantine, entry.Id + ".json")));

        store.Restore(entry.Id);
        Assert.Equal(Samples.Eicar, File.ReadAllBytes(file));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(file));
        Assert.Equal("nobody", (await KernelTestSupport.RunAsync("/usr/bin/stat", "-c", "%U", file)).StdOut.Trim());
        Assert.Empty(store.List());
        Assert.Throws<KeyNotFoundException>(() => store.Restore(entry.Id));

        // Quarantined again; then something takes its name: restoring refuses to overwrite it.
        Assert.True((await Attacker.OpenAsync(file)).Denied);
        await h.WaitForActionsAsync(a => a.Action == "quarantine", 2);
        File.WriteAllText(file, "a new file by that name");
        var again = Assert.Single(store.List());
        var refused = Assert.Throws<IOException>(() => store.Restore(again.Id));
        Assert.Contains("restoring would overwrite it", refused.Message, StringComparison.Ordinal);
        Assert.Equal("a new file by that name", File.ReadAllText(file));
        Assert.Single(store.List());
    }

    /// <summary>Move, copy and remove, with prevention (the open denied) and notify-only (the open read): each acts after the answer.</summary>
    [Theory]
    [InlineData("move", true)]
    [InlineData("move", false)]
    [InlineData("copy", true)]
    [InlineData("copy", false)]
    [InlineData("remove", true)]
    [InlineData("remove", false)]
    public async Task Each_action_acts_in_both_modes(string action, bool prevention)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs");
        var file = Infected(fs, "data/eicar.com");
        using var store = new QuarantineStore(tree.Combine("store"));
        IDetectionAction act = action switch
        {
            "move" => new QuarantineAction(store, QuarantineMode.Move),
            "copy" => new QuarantineAction(store, QuarantineMode.Copy),
            _ => new RemoveAction(),
        };
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [Path.Combine(fs, "data")], Prevention = prevention }, new EicarScanner(), actions: [act]);
        var opened = await Attacker.OpenAsync(file);
        Assert.Equal(prevention, opened.Denied);
        Assert.Equal(!prevention, opened.ReadEicar);
        var done = Assert.Single(await h.WaitForActionsAsync(a => a.Action == act.Name));
        Assert.Equal(DetectionActionOutcome.Done, done.Outcome);
        Assert.Equal(action == "copy", File.Exists(file));
        Assert.Equal(action == "remove" ? 0 : 1, store.List().Count);
        Assert.Equal(1, h.Monitor.GetStatistics().ActionsDone);
    }

    /// <summary>A quarantine too small for the file: the action fails and says why, nothing half-stored stays, the original is untouched.</summary>
    [Fact]
    public async Task A_full_quarantine_keeps_the_original_where_it_was_and_reports_it()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs");
        var tiny = await tree.MountTmpfsAsync("tiny", "16k");
        var content = Samples.Infected(200_000);
        var file = Path.Combine(fs, "big.com");
        File.WriteAllBytes(file, content);
        using var store = new QuarantineStore(Path.Combine(tiny, "store"));
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [fs], Prevention = true }, new EicarScanner(), actions: [new QuarantineAction(store, QuarantineMode.Move)]);
        Assert.True((await Attacker.OpenAsync(file)).Denied);
        var failed = Assert.Single(await h.WaitForActionsAsync(a => a.Action == "quarantine"));
        Assert.Equal(DetectionActionOutcome.Failed, failed.Outcome);
        Assert.Contains("No space left on device", failed.Detail, StringComparison.Ordinal);
        Assert.Contains("the original was not touched", failed.Detail, StringComparison.Ordinal);
        Assert.Equal(content, File.ReadAllBytes(file));
        Assert.Empty(Directory.GetFiles(Path.Combine(tiny, "store")));
        Assert.Equal(1, h.Monitor.GetStatistics().ActionsFailed);
    }

    /// <summary>
    /// Names a shell would act on, and one that is not UTF-8, through VirusEvent and the quarantine: the command gets
    /// each name as one argument (and in its environment), nothing else runs, and every file is moved, named exactly.
    /// </summary>
    [Fact]
    public async Task Names_an_attacker_chose_run_through_VirusEvent_and_the_quarantine_and_execute_nothing()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs");
        var dir = Path.Combine(fs, "data");
        Directory.CreateDirectory(dir);
        var eicar = tree.File("eicar.src", OnAccess.Core.Tests.EicarScanner.Eicar);
        string[] names = ["$(touch canary)", "`touch canary`", "a;touch canary", "'quoted' \"and\" $HOME", "new\\x0aline", "bad\\xff\\xfe.com", "-rf"];
        foreach (var name in names)
        {
            await Attacker.RunAsync("write", dir + "/" + name, eicar);
        }

        var proof = tree.Combine("proof");
        using var store = new QuarantineStore(tree.Combine("store"));
        var virusEvent = new VirusEventAction($"{Attacker.Path} record {proof} %v \"file: %f\"");
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [dir], Prevention = true }, new EicarScanner(), actions: [virusEvent, new QuarantineAction(store, QuarantineMode.Move)]);
        var opened = await Attacker.OpenAsync(names.Select(n => dir + "/" + n));
        Assert.All(opened.Values, o => Assert.True(o.Denied));
        await h.WaitForActionsAsync(a => a.Action == "quarantine" && a.Outcome == DetectionActionOutcome.Done, names.Length);
        Assert.All(h.Actions.Where(a => a.Action == "virus-event"), a => Assert.Equal(DetectionActionOutcome.Done, a.Outcome));

        var raw = names.Select(n => Unescape(dir + "/" + n)).ToList();
        var records = ByteSplit.Records(File.ReadAllBytes(proof));
        Assert.Equal(names.Length, records.Count);
        foreach (var path in raw)
        {
            // What a command line can carry: a name that is not UTF-8 goes in its escaped form, which names no other file.
            var text = System.Text.Unicode.Utf8.IsValid(path) ? Encoding.UTF8.GetString(path) : OnAccessText.Escape(path);
            Assert.Contains(records, r => r.Count == 4 && Encoding.UTF8.GetString(r[0]) == "Eicar-Test-Signature" && Encoding.UTF8.GetString(r[1]) == "file: " + text && Encoding.UTF8.GetString(r[2]) == text && Encoding.UTF8.GetString(r[3]) == "Eicar-Test-Signature");
        }

        Assert.Equal(raw.Select(Convert.ToBase64String).Order(), store.List().Select(e => Convert.ToBase64String(e.OriginalRawPath)).Order());
        Assert.Empty(Directory.GetFileSystemEntries(dir));
        Assert.False(File.Exists(Path.Combine(Environment.CurrentDirectory, "canary")));
        Assert.Empty(Directory.GetFiles(tree.Path, "canary", SearchOption.AllDirectories));
    }

    /// <summary>
    /// Between the scan and the action the path is swapped: for a link to a file outside the tree, then for another
    /// regular file. The scanned content is stored; neither the link, its target nor the other file is touched; the
    /// action says it refused.
    /// </summary>
    [Theory]
    [InlineData("link")]
    [InlineData("file")]
    public async Task A_path_swapped_between_the_scan_and_the_action_touches_nothing_and_is_reported(string swap)
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs");
        var file = Infected(fs, "data/eicar.com");
        var outside = tree.File("outside/precious.txt", "precious");
        using var store = new QuarantineStore(tree.Combine("store"));
        using var gate = new GateAction();
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [Path.Combine(fs, "data")], Prevention = true }, new EicarScanner(), actions: [gate, new QuarantineAction(store, QuarantineMode.Move), new RemoveAction()]);
        Assert.True((await Attacker.OpenAsync(file)).Denied);
        await gate.Entered.WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken);

        File.Move(file, file + ".orig");
        if (swap == "link")
        {
            File.CreateSymbolicLink(file, outside);
        }
        else
        {
            File.WriteAllText(file, "another file");
        }

        var before = await ChangeTimeAsync(file);
        gate.Open();
        var quarantined = Assert.Single(await h.WaitForActionsAsync(a => a.Action == "quarantine"));
        var removal = Assert.Single(await h.WaitForActionsAsync(a => a.Action == "remove"));
        Assert.Equal(DetectionActionOutcome.Refused, quarantined.Outcome);
        Assert.Contains("swapped since the scan", quarantined.Detail, StringComparison.Ordinal);
        Assert.Equal(DetectionActionOutcome.Refused, removal.Outcome);
        Assert.Equal(Sha256OfEicar, store.Get(quarantined.Id!).Sha256); // what was scanned, read from its descriptor
        Assert.Equal("precious", File.ReadAllText(outside));
        Assert.Equal(swap == "link" ? "precious" : "another file", File.ReadAllText(file));
        Assert.Equal(swap == "link", File.ResolveLinkTarget(file, returnFinalTarget: false) is not null);
        Assert.Equal(Samples.Eicar, File.ReadAllBytes(file + ".orig"));
        Assert.DoesNotContain(Directory.GetFileSystemEntries(Path.Combine(fs, "data")), e => Path.GetFileName(e).StartsWith(".onaccess-", StringComparison.Ordinal));
        Assert.Equal(before, await ChangeTimeAsync(file)); // not even renamed aside and back: a rename would change it
        Assert.False(store.Get(quarantined.Id!).PathVerified);
        Assert.Contains("restore it to a path you choose", Assert.Throws<IOException>(() => store.Restore(quarantined.Id!)).Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The infected file opened through a bind mount in another mount namespace, at a path that here names someone
    /// else's file: the path the kernel shows names that file, which is never touched (not even moved for a moment).
    /// </summary>
    [Fact]
    public async Task A_path_read_through_another_mount_namespace_touches_nothing_here()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs");
        var infected = Infected(fs, "data/eicar.com");
        var decoy = tree.File("decoy/eicar.com", "someone else's file");
        var before = await ChangeTimeAsync(decoy);
        using var store = new QuarantineStore(tree.Combine("store"));
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [Path.Combine(fs, "data")], Prevention = true }, new EicarScanner(), actions: [new QuarantineAction(store, QuarantineMode.Move), new RemoveAction()]);
        var script = $"mount --bind '{Path.Combine(fs, "data")}' '{tree.Combine("decoy")}' && cat '{decoy}'";
        var run = await KernelTestSupport.RunAsync("/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script);
        Assert.Contains("Operation not permitted", run.StdErr, StringComparison.Ordinal);
        var quarantined = Assert.Single(await h.WaitForActionsAsync(a => a.Action == "quarantine"));
        Assert.Single(await h.WaitForActionsAsync(a => a.Action == "remove"));
        Assert.Equal(decoy, quarantined.Path); // the path as the other namespace saw it
        Assert.Equal(DetectionActionOutcome.Refused, quarantined.Outcome);
        Assert.Equal("someone else's file", File.ReadAllText(decoy));
        Assert.Equal(before, await ChangeTimeAsync(decoy));
        Assert.Equal(Samples.Eicar, File.ReadAllBytes(infected));
        Assert.Equal(Sha256OfEicar, store.Get(quarantined.Id!).Sha256);
        Assert.False(store.Get(quarantined.Id!).PathVerified);
    }

    /// <summary>
    /// The file grown to a gigabyte between the scan and the action: what is stored is what was scanned (its size then),
    /// not a gigabyte of the quarantine's disk. The same file opened again and again, unchanged, is acted on once.
    /// </summary>
    [Fact]
    public async Task What_is_stored_is_what_was_scanned_and_a_file_found_again_is_acted_on_once()
    {
        KernelTestSupport.RequireRoot();
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs", "2g");
        var file = Infected(fs, "data/eicar.com");
        using var store = new QuarantineStore(tree.Combine("store"));
        using var gate = new GateAction();
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [Path.Combine(fs, "data")] }, new EicarScanner(), actions: [gate, new QuarantineAction(store, QuarantineMode.Copy)]);
        for (var i = 0; i < 5; i++)
        {
            Assert.True((await Attacker.OpenAsync(file)).ReadEicar); // notify-only: found each time
        }

        await gate.Entered.WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken);
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/usr/bin/truncate", "-s", "1G", file)).ExitCode);
        gate.Open();
        var copied = Assert.Single(await h.WaitForActionsAsync(a => a.Action == "quarantine"));
        Assert.Equal(Samples.Eicar.Length, store.Get(copied.Id!).Size);
        Assert.Equal(Sha256OfEicar, store.Get(copied.Id!).Sha256);
        await Task.Delay(200, TestContext.Current.CancellationToken); // nothing else is coming: the four others were repeats
        Assert.Single(h.Actions, a => a.Action == "quarantine");
        Assert.True(h.Monitor.GetStatistics().Infected >= 5);
    }

    private static TimeSpan Median(IEnumerable<TimeSpan> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? TimeSpan.Zero : sorted[sorted.Count / 2];
    }

    /// <summary>The change time of the entry itself (a link is not followed), in nanoseconds.</summary>
    private static async Task<string> ChangeTimeAsync(string path) => (await KernelTestSupport.RunAsync("/usr/bin/stat", "-c", "%.9Z", path)).StdOut.Trim();

    /// <summary>
    /// 1,000 infected opens while the actions are held: every open is answered meanwhile (decisions never wait for an
    /// action), and with a queue of 100 the detections beyond it are dropped, counted and reported.
    /// </summary>
    [Fact]
    public async Task A_flood_of_detections_is_answered_while_a_slow_action_holds_and_what_does_not_fit_is_dropped()
    {
        KernelTestSupport.RequireRoot();
        const int Count = 1000;
        var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var fs = await tree.MountTmpfsAsync("fs");
        var files = Enumerable.Range(0, Count).Select(i => Infected(fs, $"data/d{i % 10}/e{i}.com")).ToList();
        TimeSpan without;
        await using (var baseline = await MonitorHarness.StartAsync(KernelTestSupport.CreateTempTree("onaccess-adv-"), new OnAccessOptions { IncludePaths = [Path.Combine(fs, "data")], Prevention = true }, new EicarScanner()))
        {
            Assert.Equal(Count, (await Attacker.OpenAsync(files)).Values.Count(o => o.Denied));
            await Settled.UntilAsync(() => baseline.Events.Count(e => e.Verdict == ScanVerdict.Infected) >= Count, KernelTestSupport.Timeout);
            without = Median(baseline.Events.Where(e => e.Verdict == ScanVerdict.Infected).Select(e => e.Latency));
        }

        using var gate = new GateAction();
        await using var h = await MonitorHarness.StartAsync(tree, new OnAccessOptions { IncludePaths = [Path.Combine(fs, "data")], Prevention = true }, new EicarScanner(), new OnAccessEngineOptions { ActionQueueCapacity = 100, ActionConcurrency = 2 }, actions: [gate]);

        var opened = await Attacker.OpenAsync(files);
        Assert.Equal(Count, opened.Values.Count(o => o.Denied)); // all answered while the action held
        Assert.Equal(0, h.Monitor.GetStatistics().ActionsDone);

        // For the record (not asserted: timings are benchmarks' business): the decisions' latency with the actions
        // held, beside the same opens by a monitor without actions, measured first.
        var withActions = Median(h.Events.Where(e => e.Verdict == ScanVerdict.Infected).Select(e => e.Latency));
        TestContext.Current.TestOutputHelper?.WriteLine($"median decision latency of {Count} infected opens: {withActions.TotalMicroseconds:F0} us with the actions held, {without.TotalMicroseconds:F0} us without actions");

        gate.Open();
        await Settled.UntilAsync(() => h.Monitor.GetStatistics() is { } s && s.ActionsDone + s.ActionsDropped == Count, KernelTestSupport.Timeout);
        var statistics = h.Monitor.GetStatistics();
        Assert.Equal(Count, statistics.ActionsDone + statistics.ActionsDropped);
        Assert.InRange(statistics.ActionsDone, 100, 102); // the queue, and one in the hands of each worker
        Assert.Equal(statistics.ActionsDropped, h.Actions.Count(a => a.Outcome == DetectionActionOutcome.Dropped));
        Assert.Equal(Count, statistics.Denied);
    }

    private static string Infected(string root, string relative, string? owner = null, int mode = 0b110_100_100)
    {
        var path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, Samples.Eicar);
        File.SetUnixFileMode(path, (UnixFileMode)mode);
        if (owner is not null)
        {
            Assert.Equal(0, KernelTestSupport.RunAsync("/bin/chown", owner, path).GetAwaiter().GetResult().ExitCode);
        }

        return path;
    }

    /// <summary>The attacker program's \xHH escapes, as bytes.</summary>
    private static byte[] Unescape(string text)
    {
        var bytes = new List<byte>();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 3 < text.Length && text[i + 1] == 'x')
            {
                bytes.Add(Convert.ToByte(text.Substring(i + 2, 2), 16));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(text[i].ToString()));
            }
        }

        return [.. bytes];
    }

    /// <summary>An action that holds every detection until the test opens it.</summary>
    private sealed class GateAction : IDetectionAction, IDisposable
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SemaphoreSlim Entered { get; } = new(0);

        public string Name => "gate";

        public void Open() => _open.TrySetResult();

        public async ValueTask<DetectionActionResult> RunAsync(Detection detection, CancellationToken cancellationToken)
        {
            Entered.Release();
            await _open.Task.WaitAsync(KernelTestSupport.Timeout, cancellationToken);
            return DetectionActionResult.Done("passed");
        }

        public void Dispose()
        {
            _open.TrySetResult();
            Entered.Dispose();
        }
    }
}

/// <summary>The attacker program's <c>record</c> file: fields each ending with a NUL, a record ending with 0x1e after one.</summary>
internal static class ByteSplit
{
    public static List<List<byte[]>> Records(byte[] bytes)
    {
        var records = new List<List<byte[]>>();
        var fields = new List<byte[]>();
        var start = 0;
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == 0)
            {
                fields.Add(bytes[start..i]);
                start = i + 1;
            }
            else if (bytes[i] == 0x1e && i == start && i > 0 && bytes[i - 1] == 0)
            {
                records.Add(fields);
                fields = [];
                start = i + 1;
            }
        }

        return records;
    }
}
