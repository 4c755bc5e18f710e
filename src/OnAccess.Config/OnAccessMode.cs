namespace OnAccess.Config;

/// <summary>What kind of marks the plan asks for.</summary>
public enum OnAccessMode
{
    /// <summary>Nothing is monitored (<c>ScanOnAccess no</c>).</summary>
    Disabled,

    /// <summary><c>OnAccessIncludePath</c> directories, recursively with DDD.</summary>
    IncludePaths,

    /// <summary><c>OnAccessMountPath</c> mounts, whole and notify-only.</summary>
    MountPaths,
}
