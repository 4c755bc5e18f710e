namespace OnAccess.ClamAV;

/// <summary>A problem in a signature file: the file, the line and what is wrong. The rest of the file still loads.</summary>
/// <param name="FilePath">The signature file.</param>
/// <param name="Line">The 1-based line, or 0 when the file could not be read.</param>
/// <param name="Message">What is wrong.</param>
public sealed record SignatureLoadError(string FilePath, int Line, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{FilePath}:{Line}: {Message}";
}
