using OnAccess;
using OnAccess.ClamAV;
using OnAccess.Config;

namespace ConsoleMonitor;

/// <summary>
/// SIGHUP: the clamd.conf is read again and the flags applied on top, as at start, and the monitor reloads without a
/// gap (<see cref="IOnAccessMonitor.ReloadAsync"/>). With clamd, options that changed (endpoints, StreamMaxLength, User)
/// get a new scanner, which must answer first. The outcome is a "reloaded" line naming each change, or a "reload-refused" line naming the reason; a
/// refused reload changes nothing. The scanner kind chosen at start stays.
/// </summary>
internal sealed class Reloader(CommandLine command, string? configPath, string scanner, ClamdScannerOptions clamd, Output output, IOnAccessMonitor monitor, Func<ClamdScannerOptions, ClamdScanner> newClamd) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ClamdScannerOptions _clamd = clamd;
    private ClamdScanner? _ours; // a scanner a reload made (the host's own is the host's to dispose)

    /// <summary>The last reload started (tests wait for it through its output line).</summary>
    public Task Last { get; private set; } = Task.CompletedTask;

    public void Trigger() => Last = Task.Run(ReloadAsync);

    /// <summary>Waits for a reload under way; the scanner a reload made goes.</summary>
    public async ValueTask DisposeAsync()
    {
        await Last.ConfigureAwait(false);
        if (_ours is not null)
        {
            await _ours.DisposeAsync().ConfigureAwait(false);
        }

        _gate.Dispose();
    }

    /// <summary>Whether a scanner with <paramref name="next"/> would be the one running (endpoints, limits, trust, mode).</summary>
    private static bool SameClamd(ClamdScannerOptions next, ClamdScannerOptions running) =>
        next.Endpoints.SequenceEqual(running.Endpoints) && next.StreamMaxLength == running.StreamMaxLength && next.Mode == running.Mode
        && next.TrustedUsers.SequenceEqual(running.TrustedUsers) && next.ConnectTimeout == running.ConnectTimeout;

    /// <summary>The clamd options of a configuration and the flags: the same at start and at each reload.</summary>
    public static void ConfigureClamd(ClamdScannerOptions o, ClamdConf? conf, CommandLine command)
    {
        if (conf is not null)
        {
            o.FromClamdConf(conf); // LocalSocket, TCPSocket/TCPAddr, StreamMaxLength, User
        }

        if (command.Clamd.Count > 0)
        {
            o.Endpoints = [.. command.Clamd];
        }

        o.StartupWait = command.Wait ?? TimeSpan.Zero;
    }

    private async Task ReloadAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        ClamdScanner? fresh = null;
        try
        {
            var conf = configPath is { } path ? ClamdConf.Load(path) : null;
            var options = conf?.ToOnAccessOptions() ?? new OnAccessOptions();
            command.ApplyTo(options);
            var clamd = new ClamdScannerOptions();
            ConfigureClamd(clamd, conf, command);
            clamd.StartupWait = TimeSpan.Zero; // a reload does not wait: clamd answers now, or the reload is refused
            if (scanner == "clamd" && !SameClamd(clamd, _clamd))
            {
                fresh = clamd.Endpoints.Count > 0 ? newClamd(clamd) : throw new InvalidOperationException("the clamd.conf names no LocalSocket or TCPSocket any more, and --clamd is not given.");
            }

            var changes = await monitor.ReloadAsync(options, conf, fresh).ConfigureAwait(false);
            if (fresh is not null)
            {
                (var replaced, _ours, _clamd) = (_ours, fresh, clamd);
                fresh = null;
                if (replaced is not null)
                {
                    await replaced.DisposeAsync().ConfigureAwait(false);
                }
            }

            output.Reloaded(changes, monitor.GetStatistics(), scanner == "clamd" ? [.. _clamd.Endpoints] : null);
        }
        catch (Exception e)
        {
            // Whatever it was, it is said, and the running configuration stays (nothing escapes to the signal's thread).
            output.ReloadRefused(e is OnAccessPlanException plan ? string.Join(" ", plan.Errors) : e.Message);
        }
        finally
        {
            if (fresh is not null)
            {
                await fresh.DisposeAsync().ConfigureAwait(false);
            }

            _gate.Release();
        }
    }
}
