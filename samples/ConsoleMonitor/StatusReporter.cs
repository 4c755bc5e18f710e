using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using OnAccess;

namespace ConsoleMonitor;

/// <summary>
/// The status line every --status-interval (the monitor's health and counters), and the health just before the
/// monitor stops, for the stopped line. Registered after the monitor, so it stops first, while the monitor still runs.
/// </summary>
internal sealed class StatusReporter(IOnAccessMonitor monitor, Output output, TimeSpan? interval) : IHostedService, IDisposable
{
    /// <summary>How long the last check may take at shutdown (a clamd ping is bounded by its own timeout as well).</summary>
    private static readonly TimeSpan LastCheckBound = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;

    /// <summary>The health seen as the host began to stop (null if it could not be had in time).</summary>
    public HealthCheckResult? Last { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (interval is { } every)
        {
            _loop = Task.Run(() => ReportAsync(every), CancellationToken.None);
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(LastCheckBound);
        try
        {
            Last = await monitor.CheckHealthAsync(bounded.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Shutdown does not wait for it: the stopped line goes without a health.
        }
    }

    public void Dispose() => _stopping.Dispose();

    private async Task ReportAsync(TimeSpan every)
    {
        using var timer = new PeriodicTimer(every);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                var health = await monitor.CheckHealthAsync(_stopping.Token).ConfigureAwait(false);
                output.Status(health, monitor.GetStatistics());
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }
}
