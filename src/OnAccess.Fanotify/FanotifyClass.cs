namespace OnAccess.Fanotify;

/// <summary>The notification class of a group: whether it may hold accesses.</summary>
public enum FanotifyClass
{
    /// <summary>Notification events only (<c>FAN_CLASS_NOTIF</c>).</summary>
    Notification,

    /// <summary>Permission events after the content is in place (<c>FAN_CLASS_CONTENT</c>): what a scanner uses.</summary>
    Content,

    /// <summary>Permission events before the content is in place (<c>FAN_CLASS_PRE_CONTENT</c>): for HSM.</summary>
    PreContent,
}
