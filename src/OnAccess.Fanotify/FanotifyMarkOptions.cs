namespace OnAccess.Fanotify;

/// <summary>How a mark attaches and which objects it covers.</summary>
[Flags]
public enum FanotifyMarkOptions
{
    /// <summary>The marked object only.</summary>
    None = 0,

    /// <summary>Events on the direct children of a marked directory (<c>FAN_EVENT_ON_CHILD</c>).</summary>
    EventOnChild = 1,

    /// <summary>Events on directories too (<c>FAN_ONDIR</c>).</summary>
    OnDirectory = 2,

    /// <summary>Fail unless the path is a directory (<c>FAN_MARK_ONLYDIR</c>).</summary>
    OnlyDirectory = 4,

    /// <summary>Mark a symbolic link itself rather than its target (<c>FAN_MARK_DONT_FOLLOW</c>).</summary>
    DontFollow = 8,
}
