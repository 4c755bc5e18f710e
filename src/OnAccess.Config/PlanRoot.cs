namespace OnAccess.Config;

/// <summary>A directory or mount the plan monitors.</summary>
/// <param name="Path">The normalised absolute path.</param>
/// <param name="Recursive">Whether every subdirectory is covered too (DDD, or a whole mount).</param>
/// <param name="Marking">How it is marked: the plan's decision, shown by <c>check-config</c>.</param>
public sealed record PlanRoot(string Path, bool Recursive, RootMarking Marking);
