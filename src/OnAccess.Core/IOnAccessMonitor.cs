using OnAccess.Config;

namespace OnAccess;

/// <summary>The on-access engine: marks, events, scans, decisions.</summary>
public interface IOnAccessMonitor
{
    /// <summary>The effective plan, once resolved by <see cref="StartAsync"/>.</summary>
    OnAccessPlan? Plan { get; }

    /// <summary>Resolves the plan, places every mark, and starts answering. Returns when every mark is in place.</summary>
    /// <param name="cancellationToken">Aborts start-up.</param>
    /// <returns>A task that completes when monitoring has started.</returns>
    /// <exception cref="OnAccessPlanException">The configuration has errors (each names its directive).</exception>
    /// <exception cref="PlatformNotSupportedException">Not Linux.</exception>
    /// <exception cref="UnauthorizedAccessException">The process lacks CAP_SYS_ADMIN.</exception>
    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Closes the fanotify group first (the kernel allows every pending access), then drains the workers.</summary>
    /// <param name="cancellationToken">Stops waiting for the workers.</param>
    /// <returns>A task that completes when monitoring has stopped.</returns>
    Task StopAsync(CancellationToken cancellationToken);

    /// <summary>A snapshot of the counters.</summary>
    /// <returns>The statistics now.</returns>
    OnAccessStatistics GetStatistics();
}
