using Microsoft.Extensions.Logging;

namespace OnAccess.Inotify;

/// <summary>Log events of OnAccess.Inotify: ids 200-299.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Warning, Message = "The inotify queue overflowed; rebuilding the directory tree from its roots")]
    public static partial void Overflowed(ILogger logger);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Directory tree resynchronised: {Added} added, {Removed} removed, {Total} tracked")]
    public static partial void Resynchronized(ILogger logger, int added, int removed, int total);

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "Root {Path} was lost; it will be tracked again if it reappears")]
    public static partial void RootLost(ILogger logger, string path);

    [LoggerMessage(EventId = 203, Level = LogLevel.Information, Message = "Root {Path} reappeared and is tracked again")]
    public static partial void RootRestored(ILogger logger, string path);

    [LoggerMessage(EventId = 204, Level = LogLevel.Error, Message = "Cannot watch or protect {Path}: {Reason}; it and its subdirectories are unprotected and are tried again until they are")]
    public static partial void WatchFailed(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 205, Level = LogLevel.Information, Message = "{Path} is a mount point of another filesystem; it is tracked like any directory")]
    public static partial void NestedMount(ILogger logger, string path);

    [LoggerMessage(EventId = 206, Level = LogLevel.Information, Message = "{Path} is watched and protected again, with its subdirectories")]
    public static partial void ProtectionRestored(ILogger logger, string path);

    [LoggerMessage(EventId = 207, Level = LogLevel.Warning, Message = "{Path} left the tree but could not be unprotected: {Reason}")]
    public static partial void UnprotectFailed(ILogger logger, string path, string reason);
}
