using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using OnAccess.Tests;

namespace ConsoleMonitor.Tests;

/// <summary>
/// The built ConsoleMonitor, run as a child process (with --json, or in text mode with <see cref="StartText"/>); its
/// stdout lines are read as they come, JSON lines parsed.
/// </summary>
internal sealed class MonitorProcess : IAsyncDisposable
{
    public const string Eicar = @"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly List<string> _seenLines = [];
    private readonly List<JsonElement> _seen = [];
    private readonly Task _pump;
    private readonly Task<string> _stderr;

    private MonitorProcess(Process process)
    {
        _process = process;
        _stderr = process.StandardError.ReadToEndAsync(); // drained all along: a full pipe would stall the monitor
        _pump = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                _lines.Writer.TryWrite(line);
            }

            _lines.Writer.TryComplete();
        });
    }

    public int Pid => _process.Id;

    /// <summary>
    /// The environment variable that names a NativeAOT ConsoleMonitor (<c>dotnet publish -r linux-x64</c>) to run
    /// instead of the built ConsoleMonitor.dll under <c>dotnet</c>: scripts/test.sh runs this project once each way.
    /// </summary>
    public const string NativeVariable = "ONACCESS_CONSOLEMONITOR";

    /// <summary>The NativeAOT binary under test, or null when the tests run the JIT build.</summary>
    public static string? Native { get; } = Environment.GetEnvironmentVariable(NativeVariable) is { Length: > 0 } native ? Path.GetFullPath(native) : null;

    /// <summary>What runs ConsoleMonitor: the NativeAOT binary, or <c>dotnet ConsoleMonitor.dll</c>.</summary>
    public static string[] Command
    {
        get
        {
            if (Native is { } native)
            {
                Assert.True(File.Exists(native), $"{NativeVariable}={native}: no such file");
                return [native];
            }

            return ["dotnet", Dll];
        }
    }

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
        new(KernelTestSupport.StartIn(workingDirectory, Command[0], [.. Command.Skip(1), .. args, "--json"]));

    /// <summary>
    /// Starts it (--json) in a private mount namespace of its own where <paramref name="source"/> is bind-mounted over
    /// <paramref name="target"/>: a system file replaced for this process only, nothing changed for anyone else.
    /// </summary>
    public static MonitorProcess StartWithFileOver(string source, string target, params string[] args) =>
        new(KernelTestSupport.StartIn(null, "/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"", "sh", source, target, .. Command, .. args, "--json"]));

    /// <summary>Starts it (--json) with these environment variables added (NOTIFY_SOCKET, WATCHDOG_USEC, ...).</summary>
    public static MonitorProcess StartWithEnvironment(IEnumerable<string> variables, params string[] args) => StartUnder(["/usr/bin/env", .. variables], args);

    /// <summary>Starts it (--json) through <paramref name="wrapper"/>, a program that ends by running the command it is given (env, setpriv).</summary>
    public static MonitorProcess StartUnder(IReadOnlyList<string> wrapper, params string[] args) =>
        new(KernelTestSupport.StartIn(null, wrapper[0], [.. wrapper.Skip(1), .. Command, .. args, "--json"]));

    /// <summary>Starts it without --json: the lines a person reads.</summary>
    public static MonitorProcess StartText(params string[] args) => new(KernelTestSupport.StartIn(null, Command[0], [.. Command.Skip(1), .. args]));

    public static Task<KernelTestSupport.ChildResult> RunAsync(params string[] args) => KernelTestSupport.RunAsync(Command[0], [.. Command.Skip(1), .. args]);

    /// <summary>Runs it as another user (setpriv, no supplementary groups), with a HOME that user can write.</summary>
    public static Task<KernelTestSupport.ChildResult> RunAsAsync(string user, string group, string home, params string[] args) =>
        KernelTestSupport.RunAsync("/usr/bin/setpriv", [$"--reuid={user}", $"--regid={group}", "--clear-groups", "/usr/bin/env", $"HOME={home}", $"DOTNET_CLI_HOME={home}", .. Command, .. args]);

    /// <summary>The next JSON line that matches (earlier ones are kept for <see cref="Seen"/>).</summary>
    public async Task<JsonElement> WaitForAsync(Func<JsonElement, bool> match)
    {
        if (_seen.FirstOrDefault(match) is { ValueKind: not JsonValueKind.Undefined } found)
        {
            return found;
        }

        while (true)
        {
            if (await NextAsync() is { } json && match(json))
            {
                return json;
            }
        }
    }

    /// <summary>The first line (JSON or text) that matches, among those read so far or the next ones.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match)
    {
        if (_seenLines.FirstOrDefault(match) is { } found)
        {
            return found;
        }

        while (true)
        {
            await NextAsync();
            if (match(_seenLines[^1]))
            {
                return _seenLines[^1];
            }
        }
    }

    /// <summary>Every JSON line read so far.</summary>
    public IReadOnlyList<JsonElement> Seen => _seen;

    /// <summary>Every stdout line read so far.</summary>
    public IReadOnlyList<string> SeenLines => _seenLines;

    /// <summary>The decisions read so far.</summary>
    public IEnumerable<JsonElement> Decisions => _seen.Where(l => Event(l) == "decision");

    public static string? Event(JsonElement line) => line.GetProperty("event").GetString();

    public static string? PathOf(JsonElement line) => line.TryGetProperty("path", out var p) ? p.GetString() : null;

    public Task<JsonElement> ReadyAsync() => WaitForAsync(l => Event(l) == "ready");

    public Task<JsonElement> DecisionForAsync(string path) =>
        WaitForAsync(l => Event(l) == "decision" && PathOf(l) == path);

    /// <summary>A signal (TERM, INT, ...) to this process, by its pid.</summary>
    public async Task SignalAsync(string signal) =>
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/kill", "-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture))).ExitCode);

    /// <summary>The signal (SIGTERM unless told), then the "stopped" line and the exit code.</summary>
    /// <summary>What it wrote on stderr (once it has exited).</summary>
    public Task<string> StdErrAsync() => _stderr.WaitAsync(KernelTestSupport.Timeout);

    public async Task<(JsonElement Stopped, int ExitCode)> StopAsync(string signal = "TERM")
    {
        await SignalAsync(signal);
        var stopped = await WaitForAsync(l => Event(l) == "stopped");
        return (stopped, await ExitCodeAsync());
    }

    /// <summary>In text mode: the signal, then the "stopped:" line and the exit code.</summary>
    public async Task<(string Stopped, int ExitCode)> StopTextAsync(string signal = "TERM")
    {
        await SignalAsync(signal);
        var stopped = await WaitForLineAsync(l => l.StartsWith("stopped: ", StringComparison.Ordinal));
        return (stopped, await ExitCodeAsync());
    }

    private async Task<int> ExitCodeAsync()
    {
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>Reads one more line; returns it parsed when it is JSON.</summary>
    private async Task<JsonElement?> NextAsync()
    {
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        string line;
        try
        {
            line = await _lines.Reader.ReadAsync(cts.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            var stderr = _stderr.IsCompleted ? await _stderr : string.Empty;
            throw new TimeoutException($"No matching line; seen: {string.Join(" | ", _seenLines)} {stderr}");
        }

        _seenLines.Add(line);
        if (!line.StartsWith('{'))
        {
            return null;
        }

        var json = JsonDocument.Parse(line).RootElement.Clone();
        _seen.Add(json);
        return json;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        await _pump.WaitAsync(KernelTestSupport.Timeout);
        await _stderr.WaitAsync(KernelTestSupport.Timeout);
        _process.Dispose();
    }
}
