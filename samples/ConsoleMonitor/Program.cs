using ConsoleMonitor;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OnAccess;
using OnAccess.ClamAV;
using OnAccess.Config;

CommandLine command;
try
{
    command = CommandLine.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(CommandLine.Usage);
    return 2;
}

if (command.Help)
{
    Console.WriteLine(CommandLine.Usage);
    return 0;
}

if (command.Command == "check-config")
{
    return CheckConfig(command);
}

var output = new Output(command.Json);
// The host would reload appsettings.json on change by watching the working directory with a recursive
// FileSystemWatcher: an inotify watch per directory below it, from the limit the directory tracker needs.
var hostConfiguration = new ConfigurationManager();
hostConfiguration.AddInMemoryCollection([new("hostBuilder:reloadConfigOnChange", "false")]);
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Configuration = hostConfiguration });
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None); // start-up failures are printed once, below, without a stack trace
builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);

var configPath = command.ChooseConfig();
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
ClamdConf? conf;
try
{
    conf = configPath is { } confPath ? ClamdConf.Load(confPath) : null;
}
catch (ClamdConfException e)
{
    Console.Error.WriteLine($"ConsoleMonitor could not start: {e.Message}");
    return 2;
}

var scanner = command.ChooseScanner(conf);
if (command.Wait is not null && scanner != "clamd")
{
    Console.Error.WriteLine($"--wait applies to the clamd scanner, not to --scanner {scanner}.");
    Console.Error.WriteLine(CommandLine.Usage);
    return 2;
}

var scannerText = scanner;
switch (scanner)
{
    case "allow-all":
        onAccess.AddScanner<AllowAllScanner>();
        break;
    case "clamd":
        // One configuration, applied to what the check below reads and to the scanner the host builds.
        void ConfigureClamd(ClamdScannerOptions o)
        {
            if (conf is not null)
            {
                o.FromClamdConf(conf); // LocalSocket, TCPSocket/TCPAddr, StreamMaxLength, User
            }

            if (command.Clamd is { } endpoint)
            {
                o.Endpoints = [endpoint];
            }

            o.StartupWait = command.Wait ?? TimeSpan.Zero;
        }

        var clamdOptions = new ClamdScannerOptions();
        ConfigureClamd(clamdOptions);
        if (clamdOptions.Endpoints.Count == 0)
        {
            Console.Error.WriteLine("ConsoleMonitor could not start: the clamd scanner needs an endpoint: --clamd unix:PATH|tcp://HOST:PORT, or a --config whose clamd.conf names LocalSocket or TCPSocket.");
            return 2;
        }

        scannerText = $"clamd ({string.Join(", ", clamdOptions.Endpoints)})";
        onAccess.AddClamdScanner(ConfigureClamd);
        break;
    default:
        onAccess.AddHashDatabaseScanner(o => o.SignatureFiles = command.Signatures);
        break;
}

using var host = builder.Build();
try
{
    await host.StartAsync().ConfigureAwait(false);
}
catch (Exception e)
{
    Console.Error.WriteLine($"ConsoleMonitor could not start: {Describe(e)}");
    return 2;
}

var monitor = host.Services.GetRequiredService<IOnAccessMonitor>();
output.Ready(monitor.Plan!, monitor.GetStatistics(), scanner, scannerText, configPath);
await host.WaitForShutdownAsync().ConfigureAwait(false);
output.Stopped(monitor.GetStatistics());
return 0;

static int CheckConfig(CommandLine command)
{
    try
    {
        var conf = ClamdConf.Load(command.ConfigPath!);
        var options = conf.ToOnAccessOptions();
        var plan = OnAccessPlan.Resolve(options, conf);
        Console.WriteLine(command.Json ? Output.PlanJson(plan) : Output.PlanText(plan));
        return plan.HasErrors ? 1 : 0;
    }
    catch (ClamdConfException e)
    {
        Console.WriteLine(command.Json ? Output.ErrorJson(e) : "error: " + e.Message);
        return 1;
    }
}

static string Describe(Exception e) => e switch
{
    Microsoft.Extensions.Options.OptionsValidationException v => string.Join(" ", v.Failures),
    UnauthorizedAccessException => e.Message + (Environment.UserName == "root" ? string.Empty : " Run it as root (sudo), or give it CAP_SYS_ADMIN."),
    AggregateException { InnerExceptions.Count: 1 } a => Describe(a.InnerExceptions[0]),
    _ when e.InnerException is ClamdConfException inner => inner.Message,
    _ => e.Message,
};

/// <summary>Allows everything: measures the engine without a scanner's cost.</summary>
internal sealed class AllowAllScanner : IScanner
{
    public ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(ScanResult.Clean);
}
