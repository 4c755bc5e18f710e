using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using OnAccess;
using OnAccess.ClamAV;
using OnAccess.Config;

namespace ConsoleMonitor;

/// <summary>What ConsoleMonitor does once its command line is parsed: run the monitor, print the version, check a clamd.conf.</summary>
internal static class MonitorCommand
{
    /// <summary>Runs the monitor until SIGINT or SIGTERM (exit 0), or fails to start (exit 2, the reason on stderr).</summary>
    public static async Task<int> RunAsync(CommandLine command, CancellationToken cancellationToken)
    {
        var configPath = command.ChooseConfig();
        ClamdConf? conf = null;
        string? confError = null;
        try
        {
            conf = configPath is { } confPath ? ClamdConf.Load(confPath) : null;
        }
        catch (ClamdConfException e)
        {
            confError = e.Message;
        }

        if (command.Version)
        {
            return await PrintVersionAsync(command, conf, confError, cancellationToken).ConfigureAwait(false);
        }

        if (confError is not null)
        {
            return Fail(confError);
        }

        var scanner = command.ChooseScanner(conf);
        if (command.Wait is not null && scanner != "clamd")
        {
            return Fail($"--wait applies to the clamd scanner, and the scanner is {scanner}.");
        }

        if (command.Signatures.Count > 0 && scanner != "builtin")
        {
            return Fail($"--signatures applies to the built-in scanner, and the scanner is {scanner} (the clamd.conf names clamd's socket; --scanner builtin chooses the built-in one).");
        }

        // One configuration, applied to what is checked here and to the scanner the host builds (and at each reload).
        void ConfigureClamd(ClamdScannerOptions o) => Reloader.ConfigureClamd(o, conf, command);

        var clamdOptions = new ClamdScannerOptions();
        ConfigureClamd(clamdOptions);
        if (scanner == "clamd" && clamdOptions.Endpoints.Count == 0)
        {
            return Fail("the clamd scanner needs an endpoint: --clamd unix:PATH|tcp://HOST:PORT, or a --config whose clamd.conf names LocalSocket or TCPSocket.");
        }

        FileLog? log = null;
        try
        {
            log = command.LogPath is { } logPath ? new FileLog(logPath) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail(e.Message);
        }

        Reloader? reloader = null;
        var pending = 0; // a SIGHUP before the monitor is ready: reloaded once it is
        using (log)
        using (PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true; // SIGHUP must not end the process
            if (Volatile.Read(ref reloader) is { } ready)
            {
                ready.Trigger();
            }
            else
            {
                Volatile.Write(ref pending, 1);
            }

            if (log?.Reopen() is { } failure)
            {
                Console.Error.WriteLine($"ConsoleMonitor: the log was not reopened, it goes on to the file open before: {failure}");
            }
        }))
        {
            // clamd runs the clamd.conf's VirusEvent itself for what it finds; with another scanner, ConsoleMonitor does.
            var virusEvent = scanner == "clamd" ? null : conf?.GetValue("VirusEvent");
            if (virusEvent is not null)
            {
                try
                {
                    _ = new VirusEventAction(virusEvent);
                }
                catch (ArgumentException e)
                {
                    return Fail($"{configPath}: {e.Message}");
                }
            }

            var actions = command.QuarantinePath is not null || command.Remove || virusEvent is not null;
            return await RunHostAsync(command, configPath, actions, virusEvent, scanner, clamdOptions, ConfigureClamd, log, r =>
            {
                Volatile.Write(ref reloader, r);
                if (r is not null && Interlocked.Exchange(ref pending, 0) == 1)
                {
                    r.Trigger();
                }
            }).ConfigureAwait(false);
        }
    }

    /// <summary>quarantine list | restore ID | delete ID: 0 done, 1 refused or no such entry, 2 the store cannot be opened.</summary>
    public static int Quarantine(string command, string path, string? id, string? to, bool json)
    {
        QuarantineStore store;
        try
        {
            store = new QuarantineStore(Path.GetFullPath(path), create: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"ConsoleMonitor quarantine: {e.Message}");
            return 2;
        }

        using (store)
        {
            try
            {
                switch (command)
                {
                    case "list":
                        Output.Entries(json, store.List());
                        return 0;
                    case "restore":
                        var restored = store.Restore(id!, to);
                        Console.WriteLine($"restored {restored.Id} to {OnAccessText.Escape(restored.OriginalRawPath)} (owner {restored.Uid}:{restored.Gid}, mode {Convert.ToString(restored.Mode, 8)})");
                        return 0;
                    default:
                        store.Delete(id!);
                        Console.WriteLine($"deleted {id}");
                        return 0;
                }
            }
            catch (Exception e) when (e is IOException or KeyNotFoundException or UnauthorizedAccessException or InvalidDataException)
            {
                Console.Error.WriteLine($"ConsoleMonitor quarantine {command}: {e.Message}");
                return 1;
            }
        }
    }

    /// <summary>check-config: the plan and its diagnostics on stdout; a file that cannot be read, on stderr (in JSON, on stdout).</summary>
    public static int CheckConfig(string path, bool json, TreeMarking? treeMarking)
    {
        try
        {
            var conf = ClamdConf.Load(path);
            var options = conf.ToOnAccessOptions();
            options.TreeMarking = treeMarking ?? options.TreeMarking;
            var plan = OnAccessPlan.Resolve(options, conf);
            Console.WriteLine(json ? Output.PlanJson(plan) : Output.PlanText(plan));
            return plan.HasErrors ? 1 : 0;
        }
        catch (ClamdConfException e)
        {
            if (json)
            {
                Console.WriteLine(Output.ErrorJson(e));
            }
            else
            {
                Console.Error.WriteLine("error: " + e.Message);
            }

            return 1;
        }
    }

    private static async Task<int> RunHostAsync(CommandLine command, string? configPath, bool actions, string? virusEvent, string scanner, ClamdScannerOptions clamdOptions, Action<ClamdScannerOptions> configureClamd, FileLog? log, Action<Reloader?> running)
    {
        var output = new Output(command.Json);
        // The host would reload appsettings.json on change by watching the working directory with a recursive
        // FileSystemWatcher: an inotify watch per directory below it, from the limit the directory tracker needs.
        var hostConfiguration = new ConfigurationManager();
        hostConfiguration.AddInMemoryCollection([new("hostBuilder:reloadConfigOnChange", "false")]);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Configuration = hostConfiguration });
        builder.Logging.ClearProviders();
        if (log is not null)
        {
            builder.Logging.AddProvider(log);
        }
        else
        {
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
            builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        }

        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None); // start-up failures are printed once, below, without a stack trace
        var systemd = UseSystemd(builder.Services);

        IOnAccessBuilder onAccess = configPath is { } config
            ? builder.Services.AddOnAccessScanning(config, command.ApplyTo)
            : builder.Services.AddOnAccessScanning(command.ApplyTo);
        if (command.QuarantinePath is { } quarantine)
        {
            onAccess.AddQuarantine(o =>
            {
                o.Directory = quarantine;
                o.Mode = command.QuarantineMoves ? QuarantineMode.Move : QuarantineMode.Copy;
            });
        }
        else if (command.Remove)
        {
            onAccess.AddRemoval();
        }

        if (virusEvent is not null)
        {
            onAccess.AddVirusEvent(virusEvent);
        }

        if (!command.Quiet)
        {
            onAccess.Services.AddSingleton<IOnAccessObserver>(output);
        }
        else if (actions)
        {
            onAccess.Services.AddSingleton<IOnAccessObserver>(new ActionsOnly(output)); // action lines stay, as the stopped line does
        }

        if (command.NoCache)
        {
            onAccess.ConfigureEngine(e =>
            {
                e.KernelCache = false;
                e.CacheCapacity = 0;
            });
        }

        var scannerText = scanner;
        switch (scanner)
        {
            case "allow-all":
                onAccess.AddScanner<AllowAllScanner>();
                break;
            case "clamd":
                scannerText = $"clamd ({string.Join(", ", clamdOptions.Endpoints)})";
                onAccess.AddClamdScanner(configureClamd);
                break;
            default:
                onAccess.AddHashDatabaseScanner(o => o.SignatureFiles = [.. command.Signatures]);
                break;
        }

        // After the monitor's own hosted service: started after it, stopped before it (while it still runs).
        builder.Services.AddSingleton(sp => new StatusReporter(sp.GetRequiredService<IOnAccessMonitor>(), output, command.StatusInterval));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<StatusReporter>());
        if (systemd)
        {
            builder.Services.AddHostedService<SystemdWatchdog>();
        }

        using var host = builder.Build();
        try
        {
            await host.StartAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Fail(Describe(e));
        }

        // Start-up's garbage (the walk of every directory below the include paths) goes back to the system before the
        // long run: one compacting collection that also decommits (a few milliseconds, once), not a heap the walk sized.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var monitor = host.Services.GetRequiredService<IOnAccessMonitor>();
        output.Ready(monitor.Plan!, monitor.GetStatistics(), scanner, scannerText, configPath);
        // A scanner a reload makes logs and measures where the host's own does.
        ClamdScanner NewClamd(ClamdScannerOptions o) => new(o, host.Services.GetService<ILogger<ClamdScanner>>(), host.Services.GetService<System.Diagnostics.Metrics.IMeterFactory>());
        await using var reloader = new Reloader(command, configPath, scanner, clamdOptions, output, monitor, NewClamd);
        running(reloader);
        await host.WaitForShutdownAsync().ConfigureAwait(false);
        running(null);
        output.Stopped(monitor.GetStatistics(), host.Services.GetRequiredService<StatusReporter>().Last);
        return 0;
    }

    /// <summary>
    /// Under systemd (or whatever gives it a NOTIFY_SOCKET, as <c>systemd-run</c> and containers do): READY=1 once the
    /// host has started, so once every mark is in place; STOPPING=1. The caller adds the watchdog (WATCHDOG=1 while the
    /// event loop responds) after the monitor, so that it starts once the monitor runs.
    /// </summary>
    /// <returns>Whether there is a service manager to notify.</returns>
    private static bool UseSystemd(IServiceCollection services)
    {
        services.AddSystemd();
        if (Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is not { Length: > 0 })
        {
            return false;
        }

        services.TryAddSingleton<ISystemdNotifier, SystemdNotifier>();
        services.AddSingleton<IHostLifetime, SystemdLifetime>();
        return true;
    }

    /// <summary>--version: this program's, the library's and .NET's; with clamd as the scanner, each endpoint's answer to VERSION.</summary>
    private static async Task<int> PrintVersionAsync(CommandLine command, ClamdConf? conf, string? confError, CancellationToken cancellationToken)
    {
        static string VersionOf(Assembly assembly) =>
            assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? assembly.GetName().Version?.ToString() ?? "?";

        var (program, library) = (VersionOf(typeof(MonitorCommand).Assembly), VersionOf(typeof(IOnAccessMonitor).Assembly));
        var clamd = new List<(string Endpoint, string? Version, string? Error)>();
        if (confError is null && command.ChooseScanner(conf) == "clamd")
        {
            var options = new ClamdScannerOptions();
            Reloader.ConfigureClamd(options, conf, command);
            foreach (var endpoint in options.Endpoints)
            {
                var one = new ClamdScannerOptions { Endpoints = [endpoint], TrustedUsers = options.TrustedUsers, ConnectTimeout = options.ConnectTimeout };
                try
                {
                    await using var scanner = new ClamdScanner(one);
                    using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    bounded.CancelAfter(one.ConnectTimeout);
                    clamd.Add((endpoint, await scanner.GetVersionAsync(bounded.Token).ConfigureAwait(false), null));
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException or ArgumentException)
                {
                    clamd.Add((endpoint, null, e.Message));
                }
            }
        }

        Output.Version(command.Json, program, library, Environment.Version.ToString(), clamd, confError);
        return 0;
    }

    private static int Fail(string reason)
    {
        Console.Error.WriteLine($"ConsoleMonitor could not start: {reason}");
        return 2;
    }

    private static string Describe(Exception e) => e switch
    {
        Microsoft.Extensions.Options.OptionsValidationException v => string.Join(" ", v.Failures),
        UnauthorizedAccessException => e.Message + (Environment.UserName == "root" ? string.Empty : " Run it as root (sudo), or give it CAP_SYS_ADMIN."),
        AggregateException { InnerExceptions.Count: 1 } a => Describe(a.InnerExceptions[0]),
        _ when e.InnerException is ClamdConfException inner => inner.Message,
        _ => e.Message,
    };
}

/// <summary>With --quiet: the action lines only.</summary>
internal sealed class ActionsOnly(Output output) : IOnAccessObserver
{
    public void OnEvent(OnAccessEvent accessEvent)
    {
    }

    public void OnAction(OnAccessActionEvent actionEvent) => output.OnAction(actionEvent);
}

/// <summary>Allows everything: measures the engine without a scanner's cost.</summary>
internal sealed class AllowAllScanner : IScanner
{
    public ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(ScanResult.Clean);
}
