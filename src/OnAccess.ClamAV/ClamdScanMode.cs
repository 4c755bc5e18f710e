namespace OnAccess.ClamAV;

/// <summary>How <see cref="ClamdScanner"/> hands a file to clamd.</summary>
public enum ClamdScanMode
{
    /// <summary>FILDES on a unix socket (the event's descriptor is passed, clamd reads that very file); INSTREAM on TCP.</summary>
    Auto,

    /// <summary>Always stream the content (INSTREAM), read through the descriptor.</summary>
    Stream,
}
