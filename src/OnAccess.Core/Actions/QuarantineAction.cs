namespace OnAccess;

/// <summary>Moves or copies an infected file into a <see cref="QuarantineStore"/> (clamonacc's <c>--move</c>, <c>--copy</c>).</summary>
/// <param name="store">The quarantine.</param>
/// <param name="mode">Move or copy.</param>
public sealed class QuarantineAction(QuarantineStore store, QuarantineMode mode) : IDetectionAction
{
    /// <inheritdoc />
    public string Name => "quarantine";

    /// <inheritdoc />
    public ValueTask<DetectionActionResult> RunAsync(Detection detection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(detection);
        try
        {
            var entry = store.Add(detection, mode, cancellationToken);
            return ValueTask.FromResult((mode == QuarantineMode.Copy && entry.PathVerified) || entry.OriginalRemoved
                ? DetectionActionResult.Done($"{entry.Detail} (quarantine entry {entry.Id})", entry.Id)
                : DetectionActionResult.Refused($"{entry.Detail} (its content is quarantine entry {entry.Id})", entry.Id));
        }
        catch (IOException e)
        {
            return ValueTask.FromResult(DetectionActionResult.Failed(e.Message));
        }
    }
}

/// <summary>Removes an infected file, only if its path still names the file that was scanned (clamonacc's <c>--remove</c>).</summary>
public sealed class RemoveAction : IDetectionAction
{
    /// <inheritdoc />
    public string Name => "remove";

    /// <inheritdoc />
    public ValueTask<DetectionActionResult> RunAsync(Detection detection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(detection);
        return ValueTask.FromResult(
            QuarantineStore.Remove(detection, out var why, out var swapped) ? DetectionActionResult.Done("removed")
            : swapped ? DetectionActionResult.Refused("not removed: " + why)
            : DetectionActionResult.Failed("not removed: " + why));
    }
}
