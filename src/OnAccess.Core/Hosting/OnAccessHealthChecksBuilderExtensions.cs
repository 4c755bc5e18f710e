using Microsoft.Extensions.Diagnostics.HealthChecks;
using OnAccess;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the on-access monitor's health to a host's health checks.</summary>
public static class OnAccessHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a check of the <see cref="IOnAccessMonitor"/> registered by <c>AddOnAccessScanning</c>: see
    /// <see cref="IOnAccessMonitor.CheckHealthAsync"/> for what each state means. Its data holds the figures.
    /// </summary>
    /// <param name="builder">The health checks builder (<c>services.AddHealthChecks()</c>).</param>
    /// <param name="name">The check's name.</param>
    /// <param name="failureStatus">What Unhealthy is reported as (Unhealthy when null).</param>
    /// <param name="tags">Tags to filter checks by.</param>
    /// <returns>The builder.</returns>
    public static IHealthChecksBuilder AddOnAccess(this IHealthChecksBuilder builder, string name = "onaccess", HealthStatus? failureStatus = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(name);
        return builder.Add(new HealthCheckRegistration(name, sp => new OnAccessHealthCheck(sp.GetRequiredService<IOnAccessMonitor>()), failureStatus, tags));
    }

    private sealed class OnAccessHealthCheck(IOnAccessMonitor monitor) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var result = await monitor.CheckHealthAsync(cancellationToken).ConfigureAwait(false);
            return result.Status == HealthStatus.Unhealthy && context.Registration.FailureStatus != HealthStatus.Unhealthy
                ? new HealthCheckResult(context.Registration.FailureStatus, result.Description, result.Exception, result.Data)
                : result;
        }
    }
}
