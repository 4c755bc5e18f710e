namespace OnAccess;

/// <summary>Receives every decision, off the decision path, in order. Must not block for long.</summary>
public interface IOnAccessObserver
{
    /// <summary>Called once per decision.</summary>
    /// <param name="accessEvent">The decision.</param>
    void OnEvent(OnAccessEvent accessEvent);

    /// <summary>
    /// Called, on the same thread, once the decisions that were waiting have all been delivered (an
    /// <see cref="OnEvent"/> each), and once more after the last ones when the monitor stops: the moment to write what
    /// <see cref="OnEvent"/> buffered, so a burst of decisions costs one write instead of one per decision. Nothing by
    /// default.
    /// </summary>
    void OnEventsDelivered()
    {
    }

    /// <summary>
    /// Called once per action on a detection (<see cref="IDetectionAction"/>), on the thread that ran it: never one that
    /// holds an access. Nothing by default.
    /// </summary>
    /// <param name="actionEvent">The action and what came of it.</param>
    void OnAction(OnAccessActionEvent actionEvent)
    {
    }
}
