namespace OnAccess.ClamAV;

/// <summary>One clamd endpoint's state in the balance (<see cref="ClamdScanner.GetEndpointStatus"/>).</summary>
public sealed class ClamdEndpointStatus
{
    internal ClamdEndpointStatus(string endpoint, bool inBalance, int scansInFlight, long scans, long failures, long ejections, string? version, string? lastFailure)
    {
        Endpoint = endpoint;
        InBalance = inBalance;
        ScansInFlight = scansInFlight;
        Scans = scans;
        Failures = failures;
        Ejections = ejections;
        Version = version;
        LastFailure = lastFailure;
    }

    /// <summary>The endpoint, as given (<c>unix:/path</c> or <c>tcp://host:port</c>).</summary>
    public string Endpoint { get; }

    /// <summary>Whether scans go to it; false while it is ejected and probed.</summary>
    public bool InBalance { get; }

    /// <summary>Scans sent to it and not yet answered.</summary>
    public int ScansInFlight { get; }

    /// <summary>Scans it answered.</summary>
    public long Scans { get; }

    /// <summary>Attempts that failed on it (each was tried on another endpoint).</summary>
    public long Failures { get; }

    /// <summary>Times it was taken out of the balance.</summary>
    public long Ejections { get; }

    /// <summary>Its last answer to VERSION (the part after the first slash is its signature version), or null.</summary>
    public string? Version { get; }

    /// <summary>Why its last failed attempt failed, or null.</summary>
    public string? LastFailure { get; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Endpoint}: {(InBalance ? "in the balance" : "ejected")}, {Scans} scans, {ScansInFlight} in flight, {Failures} failures, {Ejections} ejections";
}
