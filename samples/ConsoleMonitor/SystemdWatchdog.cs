using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using OnAccess;

namespace ConsoleMonitor;

/// <summary>
/// systemd's watchdog (WatchdogSec=): WATCHDOG=1 every half of WATCHDOG_USEC, but only when the monitor's event loop
/// responds (<see cref="IOnAccessMonitor.IsRespondingAsync"/>: no kernel event has waited unread for a second). A loop
/// that is stuck, and holds opens, stops the petting, and systemd restarts the service; a timer that petted regardless
/// would keep a stuck monitor alive for ever. READY=1 and STOPPING=1 come from <see cref="SystemdLifetime"/>: READY once
/// every hosted service has started, so once every mark is in place.
/// </summary>
internal sealed partial class SystemdWatchdog(IOnAccessMonitor monitor, ISystemdNotifier notifier, ILogger<SystemdWatchdog> logger) : BackgroundService
{
    private static readonly ServiceState Pet = new("WATCHDOG=1");

    /// <summary>Half of WATCHDOG_USEC when systemd asks this process for it (WATCHDOG_PID absent or ours), else null.</summary>
    public static TimeSpan? Interval()
    {
        if (Environment.GetEnvironmentVariable("WATCHDOG_PID") is { } pid && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return null;
        }

        return ulong.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out var usec) && usec > 0
            ? TimeSpan.FromMicroseconds(usec / 2)
            : null;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (Interval() is not { } interval || !notifier.IsEnabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(interval);
        var stuck = false;
        try
        {
            do
            {
                if (await monitor.IsRespondingAsync(stoppingToken).ConfigureAwait(false))
                {
                    notifier.Notify(Pet);
                    if (stuck)
                    {
                        LogResponding(logger);
                    }

                    stuck = false;
                }
                else if (!stuck)
                {
                    stuck = true;
                    LogStuck(logger);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Critical, Message = "The event loop does not respond (kernel events wait unread, and the opens they belong to are held): systemd's watchdog is no longer told WATCHDOG=1, so systemd restarts the service")]
    private static partial void LogStuck(ILogger logger);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "The event loop responds again: systemd's watchdog is told WATCHDOG=1 again")]
    private static partial void LogResponding(ILogger logger);
}
