using System.Globalization;
using System.Text.RegularExpressions;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>The text output (without --json) a person reads: docs/consolemonitor.md's decision line and the stopped line.</summary>
[Collection(nameof(MonitorCollection))]
public sealed class TextOutputTests
{
    [Fact]
    public async Task Decision_lines_and_the_stopped_line_show_what_happened()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var eicar = tree.File("data/eicar.com", MonitorProcess.Eicar);
        var clean = tree.File("data/clean.txt", "fine");
        var clean2 = tree.File("data/clean2.txt", "fine too");
        await using var monitor = MonitorProcess.StartText("--include", tree.Combine("data"), "--prevention");
        var ready = await monitor.WaitForLineAsync(l => l.StartsWith("ready: ", StringComparison.Ordinal));
        Assert.Matches(@"^ready: include mode, prevention on, DDD on, \d+ directories marked, scanner builtin\. Ctrl\+C stops\.$", ready);

        var denied = await KernelTestSupport.RunAsync("/bin/cat", eicar);
        Assert.Contains("Operation not permitted", denied.StdErr, StringComparison.Ordinal);
        var allowed = await KernelTestSupport.RunAsync("/bin/cat", clean);
        Assert.Equal("fine", allowed.StdOut);
        Assert.Equal("fine too", (await KernelTestSupport.RunAsync("/bin/cat", clean2)).StdOut);

        // time, decision, verdict, threat, path, pid, uid, kind, reason, latency
        var deny = await monitor.WaitForLineAsync(l => l.Contains(" " + eicar + " ", StringComparison.Ordinal));
        Assert.Matches($@"^\d\d:\d\d:\d\d\.\d\d\d DENY  infected Eicar-Test-Signature {Regex.Escape(eicar)} pid={denied.Pid} uid=0 kind=open reason=scanned \d+us$", deny);
        var allow = await monitor.WaitForLineAsync(l => l.Contains(" " + clean + " ", StringComparison.Ordinal));
        Assert.Matches($@"^\d\d:\d\d:\d\d\.\d\d\d ALLOW clean    {Regex.Escape(clean)} pid={allowed.Pid} uid=0 kind=open reason=scanned \d+us$", allow);
        await monitor.WaitForLineAsync(l => l.Contains(" " + clean2 + " ", StringComparison.Ordinal));

        var (stopped, exit) = await monitor.StopTextAsync("INT");
        Assert.Equal(0, exit);
        var fields = Regex.Match(stopped, @"^stopped: healthy \(protecting 1 directory\); (\d+) events, (\d+) scans, (\d+) allowed, (\d+) denied, (\d+) infected, (\d+) errors, (\d+) timeouts, (\d+) skipped, (\d+) queue-full, (\d+) unscanned, (\d+) overflows, (\d+) directories unprotected, (\d+) hung scans$");
        Assert.True(fields.Success, stopped);
        var n = fields.Groups.Values.Skip(1).Select(g => long.Parse(g.Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.True(n[0] >= 3, $"events: {n[0]}");
        Assert.Equal([3L, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0], n[1..]); // scans, allowed, denied, infected, then nothing went wrong
        Assert.Equal(3, monitor.SeenLines.Count(l => Regex.IsMatch(l, @"^\d\d:\d\d:\d\d\.\d\d\d ")));
    }
}
