namespace OnAccess.Config;

/// <summary>
/// How a recursive include path that is not a whole filesystem is protected. clamd.conf has no directive for it: it is
/// set in code, by configuration binding, or by ConsoleMonitor's <c>--tree-marking</c>.
/// </summary>
public enum TreeMarking
{
    /// <summary>
    /// A mark on each directory, put as the directory tracker finds it (clamonacc's way, and the default): opens
    /// elsewhere cost nothing, but what happens in a new directory before its mark is in place (a few milliseconds),
    /// or in a directory moved in before the tracker sees it, is not checked.
    /// </summary>
    Directories,

    /// <summary>
    /// One filesystem mark on the filesystem that holds the include path: no window (a file in a directory made or
    /// moved in a moment ago is held like any other). Every open elsewhere on that filesystem is held too and answered
    /// at once; the directories no user can move into the tree are then ignored by the kernel, the others cost one
    /// round trip per open, and a monitor that stops answering holds that whole filesystem (bounded by the deadline).
    /// </summary>
    Filesystem,
}
