namespace OnAccess;

/// <summary>How a file was accessed.</summary>
public enum AccessKind
{
    /// <summary>Opened.</summary>
    Open,

    /// <summary>Opened to be executed.</summary>
    Exec,

    /// <summary>Read (only with per-read permission events).</summary>
    Read,

    /// <summary>Closed after writing (extra scanning).</summary>
    CloseWrite,

    /// <summary>Created (extra scanning).</summary>
    Created,

    /// <summary>Moved in (extra scanning).</summary>
    MovedIn,
}
