using System.Diagnostics;
using System.Text;
using ConsoleMonitor.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// Output that cannot be forged (issue 12, item 6): a file name may hold line breaks, terminal escapes and bytes that
/// are not UTF-8. Text lines show them escaped (one decision, one line, no escape reaches the terminal); JSON carries
/// the exact name (pathBase64 when it is not UTF-8).
/// </summary>
public sealed class OutputTests
{
    [Fact]
    public async Task A_hostile_file_name_cannot_forge_a_text_line_or_send_a_terminal_escape()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        var eicar = tree.File("eicar.src", OnAccess.Core.Tests.EicarScanner.Eicar);
        var name = "evil\\x0a12:00:00.000 ALLOW clean shadow pid=1 uid=0\\x1b[2J\\xff";
        await Attacker.RunAsync("write", data + "/" + name, eicar);

        using var monitor = KernelTestSupport.StartIn(null, MonitorProcess.Command[0], [.. MonitorProcess.Command.Skip(1), "--include", data, "--prevention"]);
        var lines = new List<string>();
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        while (await monitor.StandardOutput.ReadLineAsync(cts.Token) is { } line && !line.StartsWith("ready:", StringComparison.Ordinal))
        {
        }

        Assert.True((await Attacker.OpenAsync(data + "/" + name)).Denied);
        var decision = await monitor.StandardOutput.ReadLineAsync(cts.Token);
        await KernelTestSupport.RunAsync("/bin/kill", "-INT", monitor.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        lines.AddRange((await monitor.StandardOutput.ReadToEndAsync(cts.Token)).Split('\n', StringSplitOptions.RemoveEmptyEntries));

        Assert.NotNull(decision);
        Assert.Contains("DENY", decision, StringComparison.Ordinal);
        Assert.Contains(@"evil\n12:00:00.000 ALLOW", decision, StringComparison.Ordinal);
        Assert.Contains(@"\x1b[2J\xff", decision, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', decision);
        Assert.All(lines, l => Assert.False(l.StartsWith("12:00:00.000 ALLOW", StringComparison.Ordinal), l));
    }

    [Fact]
    public async Task A_name_that_is_not_UTF8_is_carried_exactly_in_JSON()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var data = tree.Combine("data");
        Directory.CreateDirectory(data);
        var eicar = tree.File("eicar.src", OnAccess.Core.Tests.EicarScanner.Eicar);
        await Attacker.RunAsync("write", data + "/bad\\xff\\xfe.com", eicar);
        await using var monitor = MonitorProcess.Start("--include", data, "--prevention");
        await monitor.ReadyAsync();

        Assert.True((await Attacker.OpenAsync(data + "/bad\\xff\\xfe.com")).Denied);
        var decision = await monitor.WaitForAsync(l => l.GetProperty("event").GetString() == "decision");
        var exact = Convert.FromBase64String(decision.GetProperty("pathBase64").GetString()!);
        Assert.Equal([.. Encoding.UTF8.GetBytes(data + "/bad"), 0xff, 0xfe, .. ".com"u8], exact);
        Assert.Equal(data + "/bad\uFFFD\uFFFD.com", decision.GetProperty("path").GetString());
    }
}
