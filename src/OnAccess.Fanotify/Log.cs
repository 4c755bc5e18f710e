using Microsoft.Extensions.Logging;

namespace OnAccess.Fanotify;

/// <summary>Log events of OnAccess.Fanotify: ids 100-199.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "A permission event (pid {Pid}, descriptor {Fd}) was disposed without an answer; answered {Response}")]
    public static partial void UnansweredPermissionEvent(ILogger logger, int pid, int fd, FanotifyResponse response);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "The fanotify event queue overflowed; events were lost (overflow number {Count})")]
    public static partial void QueueOverflow(ILogger logger, long count);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Reading a fanotify event failed with errno {Errno} ({Reason}); the kernel has already denied that access (failure number {Count})")]
    public static partial void ReadFailed(ILogger logger, int errno, string reason, long count);

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "Writing the answer to a permission event (pid {Pid}) failed with errno {Errno}")]
    public static partial void ResponseFailed(ILogger logger, int pid, int errno);

    [LoggerMessage(EventId = 104, Level = LogLevel.Error, Message = "The fanotify reader stopped: {Reason}; no more events are read from this group")]
    public static partial void ReaderStopped(ILogger logger, string reason);
}
