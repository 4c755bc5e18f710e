namespace OnAccess.Fanotify;

/// <summary>fanotify events, with .NET names and the kernel's bit values (linux/fanotify.h).</summary>
[Flags]
public enum FanotifyEvents : ulong
{
    /// <summary>No event.</summary>
    None = 0,

    /// <summary>A file was read (<c>FAN_ACCESS</c>).</summary>
    Access = 0x00000001,

    /// <summary>A file was written (<c>FAN_MODIFY</c>).</summary>
    Modify = 0x00000002,

    /// <summary>Metadata changed (<c>FAN_ATTRIB</c>, needs file-id reporting).</summary>
    Attrib = 0x00000004,

    /// <summary>A file opened for writing was closed (<c>FAN_CLOSE_WRITE</c>).</summary>
    CloseWrite = 0x00000008,

    /// <summary>A file opened read-only was closed (<c>FAN_CLOSE_NOWRITE</c>).</summary>
    CloseNoWrite = 0x00000010,

    /// <summary>A file was opened (<c>FAN_OPEN</c>).</summary>
    Open = 0x00000020,

    /// <summary>An entry was moved out of a directory (<c>FAN_MOVED_FROM</c>, needs file-id reporting).</summary>
    MovedFrom = 0x00000040,

    /// <summary>An entry was moved into a directory (<c>FAN_MOVED_TO</c>, needs file-id reporting).</summary>
    MovedTo = 0x00000080,

    /// <summary>An entry was created (<c>FAN_CREATE</c>, needs file-id reporting).</summary>
    Create = 0x00000100,

    /// <summary>An entry was deleted (<c>FAN_DELETE</c>, needs file-id reporting).</summary>
    Delete = 0x00000200,

    /// <summary>The marked object was deleted (<c>FAN_DELETE_SELF</c>).</summary>
    DeleteSelf = 0x00000400,

    /// <summary>The marked object was moved (<c>FAN_MOVE_SELF</c>).</summary>
    MoveSelf = 0x00000800,

    /// <summary>A file was opened to be executed (<c>FAN_OPEN_EXEC</c>, Linux 5.0).</summary>
    OpenExec = 0x00001000,

    /// <summary>The event queue overflowed and events were lost (<c>FAN_Q_OVERFLOW</c>); never part of a mark.</summary>
    QueueOverflow = 0x00004000,

    /// <summary>A filesystem error (<c>FAN_FS_ERROR</c>, Linux 5.16).</summary>
    FileSystemError = 0x00008000,

    /// <summary>Permission to open a file is asked (<c>FAN_OPEN_PERM</c>); the opener waits for the answer.</summary>
    OpenPermission = 0x00010000,

    /// <summary>Permission to read a file is asked (<c>FAN_ACCESS_PERM</c>), on every read.</summary>
    AccessPermission = 0x00020000,

    /// <summary>Permission to open a file for execution is asked (<c>FAN_OPEN_EXEC_PERM</c>, Linux 5.0).</summary>
    OpenExecPermission = 0x00040000,

    /// <summary>The event concerns a directory (<c>FAN_ONDIR</c>).</summary>
    OnDirectory = 0x40000000,
}
