namespace OnAccess;

/// <summary>What was done with an access.</summary>
public enum AccessDecision
{
    /// <summary>Nothing was held (notification mode, extra scanning).</summary>
    None,

    /// <summary>The access was allowed.</summary>
    Allow,

    /// <summary>The access was denied (the caller got EPERM).</summary>
    Deny,
}
