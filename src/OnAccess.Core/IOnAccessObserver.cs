namespace OnAccess;

/// <summary>Receives every decision, off the decision path, in order. Must not block for long.</summary>
public interface IOnAccessObserver
{
    /// <summary>Called once per decision.</summary>
    /// <param name="accessEvent">The decision.</param>
    void OnEvent(OnAccessEvent accessEvent);
}
