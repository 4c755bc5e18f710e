using Microsoft.Extensions.Diagnostics.HealthChecks;
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

    /// <summary>
    /// How monitoring is doing. Unhealthy: no open is checked (not running, the fanotify group closed, the event loop
    /// stuck with events waiting unread) or nothing can be scanned (the scanner, when it implements
    /// <see cref="IHealthCheck"/>, says so: every clamd endpoint down). Degraded: directories unprotected and retried,
    /// scans hung, the kernel's queue overflowed or the scan queue was full within the last minute, the scanner degraded
    /// (a clamd endpoint down while another scans). The data holds the figures.
    /// </summary>
    /// <param name="cancellationToken">Stops the check.</param>
    /// <returns>The state, a description naming each problem, and the figures.</returns>
    Task<HealthCheckResult> CheckHealthAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Whether the event loop reads the kernel's events: false when events have waited unread for a second (the loop
    /// is stuck, and opens are held) or the monitor is not running. What a service manager's watchdog should be told;
    /// it waits at most that second, and only while events wait.
    /// </summary>
    /// <param name="cancellationToken">Stops the check.</param>
    /// <returns>Whether the loop responds.</returns>
    Task<bool> IsRespondingAsync(CancellationToken cancellationToken = default);
}
