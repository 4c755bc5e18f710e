namespace OnAccess;

/// <summary>
/// Implemented by scanners whose signatures change: cached clean verdicts are valid for one generation only. When
/// the value changes, the engine drops every cached verdict, in the kernel too.
/// </summary>
public interface ISignatureGeneration
{
    /// <summary>Changes whenever the signatures change.</summary>
    long Generation { get; }
}
