namespace OnAccess;

/// <summary>
/// A scanner that can tell, before the monitor relies on it, whether it can scan at all (a daemon it talks to is
/// reachable, say). The monitor waits for it before it puts a single mark: a scanner that cannot scan would otherwise
/// turn every open into <c>OnAccessDenyOnError</c>'s answer, allowing everything by default, without a word.
/// </summary>
public interface IScannerReadiness
{
    /// <summary>Completes when the scanner can scan (waiting as long as it is configured to).</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when ready.</returns>
    /// <exception cref="IOException">It cannot scan: the message names what is wrong (the monitor does not start).</exception>
    Task WaitUntilReadyAsync(CancellationToken cancellationToken);
}
