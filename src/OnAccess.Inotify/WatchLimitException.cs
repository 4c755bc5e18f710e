namespace OnAccess.Inotify;

/// <summary>The watch limit was reached during start-up, where it fails start-up with the count it needs.</summary>
internal sealed class WatchLimitException(string path, Interop.ErrorInfo error) : Exception
{
    public string Path { get; } = path;

    public Interop.ErrorInfo Error { get; } = error;
}
