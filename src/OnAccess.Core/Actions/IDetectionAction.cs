namespace OnAccess;

/// <summary>
/// Something done about an infected file once its access has been answered (quarantine, removal, a command): never on
/// the thread that read the event and never before the answer, so no decision waits for it. Actions run in the order
/// they were added, on a bounded queue with bounded concurrency; a full queue drops the detection (counted, logged).
/// </summary>
public interface IDetectionAction
{
    /// <summary>The action's name in logs and events (<c>quarantine</c>, <c>remove</c>, <c>virus-event</c>).</summary>
    string Name { get; }

    /// <summary>Acts on one detection. The file's descriptor stays open until every action has run.</summary>
    /// <param name="detection">What was found, and the very file that was scanned.</param>
    /// <param name="cancellationToken">The monitor is stopping.</param>
    /// <returns>What came of it (a failure is reported, never thrown on).</returns>
    ValueTask<DetectionActionResult> RunAsync(Detection detection, CancellationToken cancellationToken);
}
