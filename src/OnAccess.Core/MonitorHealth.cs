using System.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace OnAccess;

/// <summary>
/// How the running monitor is doing, from what its parts know now: Unhealthy when no access is being checked (not
/// running, the group closed, the event loop stuck) or nothing can be scanned (the scanner says so); Degraded when
/// protection is partial or was lately (directories unprotected and retried, scans hung, the kernel's queue overflowed,
/// the scan queue was full, the scanner degraded); Healthy otherwise. The data holds the figures.
/// </summary>
/// <remarks>
/// "Lately" is <see cref="RecentWindow"/>: an overflow or a full queue is seen in the counters when they grow between
/// two checks (or from start-up to the first), and is reported for that long afterwards.
/// </remarks>
internal sealed class MonitorHealth
{
    /// <summary>How long events may wait unread before the event loop counts as stuck.</summary>
    internal static readonly TimeSpan StallAfter = TimeSpan.FromSeconds(1);

    /// <summary>How long an overflow or a full queue keeps the monitor Degraded.</summary>
    internal static readonly TimeSpan RecentWindow = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private Recent _overflows;
    private Recent _queueFull;

    /// <summary>What the monitor knows of itself when it is asked.</summary>
    /// <param name="Running">Started and not stopped.</param>
    /// <param name="Enabled">The plan protects anything at all.</param>
    /// <param name="Loop">The event loop of the group read now.</param>
    /// <param name="Statistics">The counters now.</param>
    /// <param name="QueueCapacity">The scan queue's capacity.</param>
    /// <param name="Scanner">The scanner, when it can tell its own health.</param>
    public readonly record struct Facts(bool Running, bool Enabled, EventLoop? Loop, OnAccessStatistics Statistics, int QueueCapacity, IHealthCheck? Scanner);

    /// <summary>Whether the event loop reads the kernel's events (a service manager's watchdog asks only this).</summary>
    public static Task<bool> IsRespondingAsync(Facts facts, CancellationToken cancellationToken) =>
        facts.Running && facts.Loop is { } loop ? loop.IsRespondingAsync(StallAfter, cancellationToken) : Task.FromResult(!facts.Running ? false : !facts.Enabled);

    public async Task<HealthCheckResult> CheckAsync(Facts facts, CancellationToken cancellationToken)
    {
        var s = facts.Statistics;
        var data = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["marked_directories"] = s.MarkedDirectories,
            ["unprotected_directories"] = s.UnprotectedDirectories,
            ["events"] = s.Events,
            ["scans"] = s.Scans,
            ["denied"] = s.Denied,
            ["infected"] = s.Infected,
            ["errors"] = s.Errors,
            ["timeouts"] = s.Timeouts,
            ["overflows"] = s.Overflows,
            ["queue_depth"] = s.QueueDepth,
            ["queue_full"] = s.QueueFull,
            ["scans_in_flight"] = s.ScansInFlight,
            ["hung_scans"] = s.HungScans,
            ["group_restarts"] = s.GroupRestarts,
        };
        if (!facts.Running)
        {
            data["event_loop"] = "stopped";
            return HealthCheckResult.Unhealthy("on-access scanning is not running: no open is checked", data: data);
        }

        if (!facts.Enabled)
        {
            data["event_loop"] = "none";
            return HealthCheckResult.Healthy("on-access scanning is disabled by its configuration (OnAccessPrevention/OnAccessIncludePath/OnAccessMountPath)", data);
        }

        var unhealthy = new List<string>();
        var degraded = new List<string>();
        var scannerCheck = facts.Scanner is { } scanner ? CheckScannerAsync(scanner, cancellationToken) : null; // meanwhile
        var responding = await IsRespondingAsync(facts, cancellationToken).ConfigureAwait(false);
        data["event_loop"] = facts.Loop is null || facts.Loop.ReadingStopped.IsCompleted ? "closed" : responding ? "responding" : "stuck";
        if (facts.Loop is null || facts.Loop.ReadingStopped.IsCompleted)
        {
            unhealthy.Add("the fanotify group is closed: no open is checked");
        }
        else if (!responding)
        {
            unhealthy.Add($"the event loop is stuck: the kernel's events have waited unread for over {StallAfter.TotalSeconds:0.#} s, and the opens they belong to are held");
        }

        if (scannerCheck is not null)
        {
            var result = await scannerCheck.ConfigureAwait(false);
            data["scanner"] = result.Status.ToString();
            foreach (var (key, value) in result.Data)
            {
                data["scanner " + key] = value;
            }

            if (result.Status != HealthStatus.Healthy)
            {
                (result.Status == HealthStatus.Unhealthy ? unhealthy : degraded).Add("scanner: " + result.Description);
            }
        }

        if (s.UnprotectedDirectories > 0)
        {
            degraded.Add($"{s.UnprotectedDirectories} directories (with what is below them) could not be watched or marked and are retried (fs.inotify.max_user_watches?)");
        }

        if (s.HungScans > 0)
        {
            degraded.Add($"{s.HungScans} scans have not returned a whole OnAccessCurlTimeout after their deadline and hold their slots");
        }

        var now = Stopwatch.GetTimestamp();
        lock (_gate)
        {
            if (_overflows.Saw(s.Overflows, now) is { } overflows)
            {
                degraded.Add($"the kernel's event queue overflowed ({overflows} lost, the tree rebuilt) within the last {RecentWindow.TotalSeconds:0} s");
            }

            if (_queueFull.Saw(s.QueueFull, now) is not null || s.QueueDepth >= facts.QueueCapacity)
            {
                degraded.Add($"the scan queue ({facts.QueueCapacity}) was full within the last {RecentWindow.TotalSeconds:0} s: accesses were answered unscanned ({s.QueueFull} in all)");
            }
        }

        return unhealthy.Count > 0 ? HealthCheckResult.Unhealthy(string.Join("; ", unhealthy.Concat(degraded)), data: data)
            : degraded.Count > 0 ? HealthCheckResult.Degraded(string.Join("; ", degraded), data: data)
            : HealthCheckResult.Healthy($"protecting {s.MarkedDirectories} {(s.MarkedDirectories == 1 ? "directory" : "directories")}", data);
    }

    private static async Task<HealthCheckResult> CheckScannerAsync(IHealthCheck scanner, CancellationToken cancellationToken)
    {
        try
        {
            var context = new HealthCheckContext { Registration = new HealthCheckRegistration("scanner", scanner, HealthStatus.Unhealthy, null) };
            return await scanner.CheckHealthAsync(context, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"its health check failed: {e.Message}", e);
        }
    }

    /// <summary>A counter of trouble: when it last grew, and by how much over the window.</summary>
    private struct Recent
    {
        private long _seen;
        private long _grewAt;
        private long _since;

        /// <summary>How much it grew within <see cref="RecentWindow"/>, or null when it did not.</summary>
        public long? Saw(long count, long now)
        {
            if (count > _seen)
            {
                if (_grewAt == 0 || Stopwatch.GetElapsedTime(_grewAt, now) > RecentWindow)
                {
                    _since = _seen;
                }

                _seen = count;
                _grewAt = now;
            }

            return _grewAt != 0 && Stopwatch.GetElapsedTime(_grewAt, now) <= RecentWindow ? count - _since : null;
        }
    }
}
