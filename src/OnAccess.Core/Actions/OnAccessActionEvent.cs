namespace OnAccess;

/// <summary>One action's outcome on one detection, as observers see it (<see cref="IOnAccessObserver.OnAction"/>).</summary>
/// <param name="Action">The action's name (<c>quarantine</c>, <c>remove</c>, <c>virus-event</c>, ...).</param>
/// <param name="Path">The file's path when its access was decided (U+FFFD for bytes that are not UTF-8).</param>
/// <param name="RawPath">The same path as the kernel's bytes.</param>
/// <param name="ThreatName">What was found.</param>
/// <param name="ProcessId">Who accessed it.</param>
/// <param name="UserId">Its user, when known.</param>
/// <param name="Outcome">How the action ended.</param>
/// <param name="Detail">What was done, or why not.</param>
/// <param name="Id">What the action made of it (a quarantine entry's id), if anything.</param>
public sealed record OnAccessActionEvent(string Action, string? Path, byte[]? RawPath, string ThreatName, int ProcessId, uint? UserId, DetectionActionOutcome Outcome, string Detail, string? Id);
