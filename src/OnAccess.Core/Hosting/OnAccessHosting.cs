using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.Options;
using OnAccess.Config;

namespace OnAccess.Hosting;

/// <summary>The clamd.conf that configured the host, read once when first needed.</summary>
internal sealed class ClamdConfSource(string path)
{
    private readonly Lazy<ClamdConf> _conf = new(() => ClamdConf.Load(path));

    public string Path { get; } = path;

    public ClamdConf Conf => _conf.Value;
}

/// <summary>
/// The plan of the host's options, resolved once: by the options validation on start, and handed to the monitor
/// as it is built from the same options instance.
/// </summary>
internal sealed class OnAccessPlanSource(ClamdConfSource? source = null)
{
    private readonly Lock _gate = new();
    private (OnAccessOptions Options, OnAccessPlan Plan)? _resolved;

    public ClamdConf? Conf => source?.Conf;

    /// <summary>
    /// Set once the monitor runs: from then on a change of the options is validated by the reload, which refuses an
    /// invalid one and keeps the running configuration. (The options monitor would otherwise throw from inside the
    /// configuration provider's reload, on the provider's thread, and the change would be neither applied nor reported.)
    /// </summary>
    public volatile bool Running;

    /// <summary>How many times a plan was resolved (tests: once per host).</summary>
    public int Resolutions { get; private set; }

    /// <summary>The plan of <paramref name="options"/>, resolved the first time it is asked for.</summary>
    /// <exception cref="ClamdConfException">The clamd.conf cannot be read.</exception>
    public OnAccessPlan PlanFor(OnAccessOptions options)
    {
        lock (_gate)
        {
            if (_resolved is { } done && ReferenceEquals(done.Options, options))
            {
                return done.Plan;
            }

            var plan = OnAccessPlan.Resolve(options, source?.Conf);
            _resolved = (options, plan);
            Resolutions++;
            return plan;
        }
    }
}

/// <summary>
/// Validates <see cref="OnAccessOptions"/> on start with the plan's own rules: every error diagnostic becomes a
/// failure naming its directive (and file and line), so the host does not start with a configuration it cannot honour.
/// </summary>
internal sealed class OnAccessOptionsValidator(OnAccessPlanSource plans) : IValidateOptions<OnAccessOptions>
{
    public ValidateOptionsResult Validate(string? name, OnAccessOptions options)
    {
        if (plans.Running)
        {
            return ValidateOptionsResult.Skip; // a reload: OnAccessHostedService validates it, and refuses it whole
        }

        OnAccessPlan plan;
        try
        {
            plan = plans.PlanFor(options);
        }
        catch (ClamdConfException e)
        {
            return ValidateOptionsResult.Fail(e.Message);
        }

        var errors = plan.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()).ToList();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>
/// Starts the monitor in <see cref="StartAsync"/> (before the host reports started, so a missing capability or a bad
/// directive fails start-up) and stops it first thing on shutdown. While it runs, a change of the options (a
/// configuration provider that reloads) is applied with <see cref="OnAccessMonitor.ReloadAsync(OnAccessOptions, ClamdConf?, IScanner?, CancellationToken)"/>:
/// without a gap, and an invalid one is refused (logged) while the running one stays.
/// </summary>
internal sealed class OnAccessHostedService(
    OnAccessMonitor monitor,
    OnAccessPlanSource plans,
    IOptionsFactory<OnAccessOptions> factory,
    IEnumerable<IOptionsChangeTokenSource<OnAccessOptions>> changes,
    ILoggerFactory? loggerFactory = null) : IHostedService, IDisposable
{
    private readonly ILogger _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<OnAccessMonitor>();
    private IDisposable[] _subscriptions = [];
    private Task _reload = Task.CompletedTask;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await monitor.StartAsync(cancellationToken).ConfigureAwait(false);
        plans.Running = true;
        _subscriptions = [.. changes.Where(c => c.Name == Options.DefaultName).Select(c => ChangeToken.OnChange(c.GetChangeToken, OnChanged))];
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        await monitor.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        foreach (var subscription in _subscriptions)
        {
            subscription.Dispose();
        }

        _subscriptions = [];
    }

    /// <summary>The last reload started (tests).</summary>
    internal Task LastReload => _reload;

    private void OnChanged() => _reload = ReloadAsync();

    private async Task ReloadAsync()
    {
        try
        {
            var options = factory.Create(Options.DefaultName);
            await monitor.ReloadAsync(plans.PlanFor(options), scanner: null, CancellationToken.None).ConfigureAwait(false);
        }
        catch (ClamdConfException e)
        {
            Log.ReloadRefused(_logger, e.Message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Logged by the monitor (event 35); the running configuration stays. Nothing escapes to the provider's thread.
        }
    }
}
