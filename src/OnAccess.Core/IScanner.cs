namespace OnAccess;

/// <summary>Scans one file. Implementations must be thread-safe: up to <c>MaxThreads</c> scans run at once.</summary>
public interface IScanner
{
    /// <summary>
    /// Scans the file behind <see cref="ScanRequest.File"/>. Read it with <see cref="RandomAccess"/> (or pass the
    /// descriptor on); never reopen <see cref="ScanRequest.Path"/>, which is for display only.
    /// </summary>
    /// <param name="request">The file and who accessed it.</param>
    /// <param name="cancellationToken">Fires at the scan deadline (<c>OnAccessCurlTimeout</c>) or on shutdown.</param>
    /// <returns>Clean, infected, skipped or error.</returns>
    ValueTask<ScanResult> ScanAsync(ScanRequest request, CancellationToken cancellationToken);
}
