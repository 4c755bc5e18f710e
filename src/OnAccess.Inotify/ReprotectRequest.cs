namespace OnAccess.Inotify;

/// <summary>A <see cref="DirectoryTree.ReprotectAsync"/> call waiting for the tracker's thread.</summary>
internal sealed class ReprotectRequest(Action? before)
{
    public Action? Before { get; } = before;

    public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
