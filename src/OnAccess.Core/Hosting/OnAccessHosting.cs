using Microsoft.Extensions.Hosting;
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
/// directive fails start-up) and stops it first thing on shutdown.
/// </summary>
internal sealed class OnAccessHostedService(OnAccessMonitor monitor) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => monitor.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => monitor.StopAsync(cancellationToken);
}
