using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>The built ConsoleMonitor, run as a child process with --json; its stdout lines are parsed as they come.</summary>
internal sealed class MonitorProcess : IAsyncDisposable
{
    public const string Eicar = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

    private readonly Process _process;
    private readonly Channel<JsonElement> _lines = Channel.CreateUnbounded<JsonElement>();
    private readonly List<JsonElement> _seen = [];
    private readonly Task _pump;

    private MonitorProcess(Process process)
    {
        _process = process;
        _pump = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.StartsWith('{'))
                {
                    _lines.Writer.TryWrite(JsonDocument.Parse(line).RootElement.Clone());
                }
            }

            _lines.Writer.TryComplete();
        });
    }

    public int Pid => _process.Id;

    public static string Dll
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "OnAccess.sln")))
            {
                dir = dir.Parent;
            }

            var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
            var dll = Path.Combine(dir!.FullName, "samples", "ConsoleMonitor", "bin", configuration, "net10.0", "ConsoleMonitor.dll");
            Assert.True(File.Exists(dll), $"{dll} was not built");
            return dll;
        }
    }

    public static MonitorProcess Start(params string[] args) => StartIn(null, args);

    public static MonitorProcess StartIn(string? workingDirectory, params string[] args) =>
        new(KernelTestSupport.StartIn(workingDirectory, "dotnet", [Dll, .. args, "--json"]));

    public static Task<KernelTestSupport.ChildResult> RunAsync(params string[] args) => KernelTestSupport.RunAsync("dotnet", [Dll, .. args]);

    /// <summary>The next JSON line that matches (earlier ones are kept for <see cref="Seen"/>).</summary>
    public async Task<JsonElement> WaitForAsync(Func<JsonElement, bool> match)
    {
        if (_seen.FirstOrDefault(match) is { ValueKind: not JsonValueKind.Undefined } found)
        {
            return found;
        }

        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        try
        {
            while (true)
            {
                var line = await _lines.Reader.ReadAsync(cts.Token);
                _seen.Add(line);
                if (match(line))
                {
                    return line;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            var stderr = _process.HasExited ? await _process.StandardError.ReadToEndAsync() : string.Empty;
            throw new TimeoutException($"No matching line; seen: {string.Join(" ", _seen.Select(s => s.GetRawText()))} {stderr}");
        }
    }

    public IReadOnlyList<JsonElement> Seen => _seen;

    public Task<JsonElement> ReadyAsync() => WaitForAsync(l => l.GetProperty("event").GetString() == "ready");

    public Task<JsonElement> DecisionForAsync(string path) =>
        WaitForAsync(l => l.GetProperty("event").GetString() == "decision" && l.GetProperty("path").GetString() == path);

    /// <summary>SIGTERM, then the "stopped" line and the exit code.</summary>
    public async Task<(JsonElement Stopped, int ExitCode)> StopAsync()
    {
        await KernelTestSupport.RunAsync("/bin/kill", "-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var stopped = await WaitForAsync(l => l.GetProperty("event").GetString() == "stopped");
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        await _process.WaitForExitAsync(cts.Token);
        return (stopped, _process.ExitCode);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        await _pump.WaitAsync(KernelTestSupport.Timeout);
        _process.Dispose();
    }
}
