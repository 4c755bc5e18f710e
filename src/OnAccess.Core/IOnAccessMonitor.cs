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

    /// <summary>
    /// Applies a new configuration without a gap: its plan is resolved (an invalid one is refused with its
    /// diagnostics, and the running configuration stays), a whole new engine is started beside the running one with
    /// every new mark in place, and only then does the old one let go (its admitted accesses decided first). At no
    /// instant is an open protected less than both configurations would protect it. What changed is logged (event 34)
    /// and returned; nothing changed, nothing is done.
    /// </summary>
    /// <param name="options">The new on-access directives.</param>
    /// <param name="source">The clamd.conf they came from, so diagnostics can name its lines.</param>
    /// <param name="scanner">A new scanner (for example clamd at other endpoints), made ready before it is used; null
    /// keeps the current one. The caller still owns the scanner it replaces.</param>
    /// <param name="cancellationToken">Aborts the reload (the running configuration stays).</param>
    /// <returns>The changes, by directive.</returns>
    /// <exception cref="OnAccessPlanException">The new configuration has errors (each names its directive); nothing changed.</exception>
    /// <exception cref="IOException">The new marks could not be put (a watch limit, say), or the new scanner is not ready; nothing changed.</exception>
    /// <exception cref="InvalidOperationException">The monitor is not running.</exception>
    Task<IReadOnlyList<OnAccessPlanChange>> ReloadAsync(OnAccessOptions options, ClamdConf? source = null, IScanner? scanner = null, CancellationToken cancellationToken = default);

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
