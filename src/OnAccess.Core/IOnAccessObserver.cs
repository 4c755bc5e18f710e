namespace OnAccess;

/// <summary>Receives every decision, off the decision path, in order. Must not block for long.</summary>
public interface IOnAccessObserver
{
    /// <summary>Called once per decision.</summary>
    /// <param name="accessEvent">The decision.</param>
    void OnEvent(OnAccessEvent accessEvent);

    /// <summary>
    /// Called once per action on a detection (<see cref="IDetectionAction"/>), on the thread that ran it: never one that
    /// holds an access. Nothing by default.
    /// </summary>
    /// <param name="actionEvent">The action and what came of it.</param>
    void OnAction(OnAccessActionEvent actionEvent)
    {
    }
}
