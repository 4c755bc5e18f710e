namespace OnAccess.Fanotify;

/// <summary>The answer to a permission event.</summary>
public enum FanotifyResponse
{
    /// <summary>Let the access proceed (<c>FAN_ALLOW</c>).</summary>
    Allow,

    /// <summary>Refuse the access: the caller gets EPERM (<c>FAN_DENY</c>).</summary>
    Deny,
}
