namespace OnAccess.ClamAV;

/// <summary>Where <see cref="HashDatabaseScanner"/> finds its signatures.</summary>
public sealed class HashDatabaseScannerOptions
{
    /// <summary>
    /// ClamAV hash signature files: <c>.hdb</c> (<c>md5:size:name</c>) and <c>.hsb</c>
    /// (<c>sha1:size:name</c> or <c>sha256:size:name</c>; <c>*</c> as the size matches any size).
    /// </summary>
    public IList<string> SignatureFiles { get; set; } = [];

    /// <summary>Detect the EICAR test file (with or without a trailing line break). The default is <see langword="true"/>.</summary>
    public bool IncludeEicar { get; set; } = true;

    /// <summary>How often, at most, the files are checked for changes. The default is one second.</summary>
    public TimeSpan ReloadCheckInterval { get; set; } = TimeSpan.FromSeconds(1);
}
