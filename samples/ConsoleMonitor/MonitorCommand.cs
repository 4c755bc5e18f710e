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
        ClamdConf? conf;
        try
        {
            conf = configPath is { } confPath ? ClamdConf.Load(confPath) : null;
        }
        catch (ClamdConfException e)
        {
            return Fail(e.Message);
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

        if (command.Version)
        {
            return await PrintVersionAsync(scanner == "clamd" ? clamdOptions : null, cancellationToken).ConfigureAwait(false);
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
        using (log)
        using (PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true; // SIGHUP must not end the process
            log?.Reopen();
            Volatile.Read(ref reloader)?.Trigger();
        }))
        {
            return await RunHostAsync(command, configPath, scanner, clamdOptions, ConfigureClamd, log, r => Volatile.Write(ref reloader, r)).ConfigureAwait(false);
        }
    }

    /// <summary>check-config: the plan and its diagnostics on stdout; a file that cannot be read, on stderr (in JSON, on stdout).</summary>
    public static int CheckConfig(string path, bool json)
    {
        try
        {
            var conf = ClamdConf.Load(path);
            var plan = OnAccessPlan.Resolve(conf.ToOnAccessOptions(), conf);
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

    private static async Task<int> RunHostAsync(CommandLine command, string? configPath, string scanner, ClamdScannerOptions clamdOptions, Action<ClamdScannerOptions> configureClamd, FileLog? log, Action<Reloader?> running)
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
        UseSystemd(builder.Services);

        IOnAccessBuilder onAccess = configPath is { } config
            ? builder.Services.AddOnAccessScanning(config, command.ApplyTo)
            : builder.Services.AddOnAccessScanning(command.ApplyTo);
        if (!command.Quiet)
        {
            onAccess.Services.AddSingleton<IOnAccessObserver>(output);
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
        using var host = builder.Build();
        try
        {
            await host.StartAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Fail(Describe(e));
        }

        var monitor = host.Services.GetRequiredService<IOnAccessMonitor>();
        output.Ready(monitor.Plan!, monitor.GetStatistics(), scanner, scannerText, configPath);
        await using var reloader = new Reloader(command, configPath, scanner, [.. clamdOptions.Endpoints], output, monitor);
        running(reloader);
        await host.WaitForShutdownAsync().ConfigureAwait(false);
        running(null);
        output.Stopped(monitor.GetStatistics(), host.Services.GetRequiredService<StatusReporter>().Last);
        return 0;
    }

    /// <summary>
    /// Under systemd (or whatever gives it a NOTIFY_SOCKET, as <c>systemd-run</c> and containers do): READY=1 once the
    /// host has started, so once every mark is in place; STOPPING=1; WATCHDOG=1 while the event loop responds.
    /// </summary>
    private static void UseSystemd(IServiceCollection services)
    {
        services.AddSystemd();
        if (Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is not { Length: > 0 })
        {
            return;
        }

        services.TryAddSingleton<ISystemdNotifier, SystemdNotifier>();
        services.AddSingleton<IHostLifetime, SystemdLifetime>();
        services.AddHostedService<SystemdWatchdog>();
    }

    private static async Task<int> PrintVersionAsync(ClamdScannerOptions? clamd, CancellationToken cancellationToken)
    {
        static string VersionOf(Assembly assembly) =>
            assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? assembly.GetName().Version?.ToString() ?? "?";

        Console.WriteLine($"ConsoleMonitor {VersionOf(typeof(MonitorCommand).Assembly)} (OnAccess {VersionOf(typeof(IOnAccessMonitor).Assembly)}, .NET {Environment.Version})");
        if (clamd is not null)
        {
            await using var scanner = new ClamdScanner(clamd);
            try
            {
                using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                bounded.CancelAfter(clamd.ConnectTimeout);
                Console.WriteLine($"clamd {string.Join(", ", clamd.Endpoints)}: {await scanner.GetVersionAsync(bounded.Token).ConfigureAwait(false)}");
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
            {
                Console.WriteLine($"clamd {string.Join(", ", clamd.Endpoints)}: no answer ({e.Message})");
            }
        }

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

/// <summary>Allows everything: measures the engine without a scanner's cost.</summary>
internal sealed class AllowAllScanner : IScanner
{
    public ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(ScanResult.Clean);
}
