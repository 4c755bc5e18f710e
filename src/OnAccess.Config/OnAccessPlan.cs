using OnAccess.Paths;

namespace OnAccess.Config;

/// <summary>
/// The effective on-access plan: every precedence rule of the ClamAV on-access guide applied once, here, with a
/// <see cref="PlanDiagnostic"/> for each override or rejection. Nothing downstream decides a precedence rule again.
/// </summary>
public sealed class OnAccessPlan
{
    internal OnAccessPlan()
    {
    }

    /// <summary>Whether anything is monitored.</summary>
    public bool Enabled => Mode != OnAccessMode.Disabled;

    /// <summary>Include paths, mount paths, or disabled.</summary>
    public OnAccessMode Mode { get; internal init; }

    /// <summary>Whether opens are held until the scanner answers (permission events).</summary>
    public bool Prevention { get; internal init; }

    /// <summary>Whether the directory tracker (DDD) keeps include paths covered recursively.</summary>
    public bool DynamicDirectoryDetermination { get; internal init; }

    /// <summary>The directories (or mounts) to mark, normalised, de-duplicated and merged.</summary>
    public IReadOnlyList<PlanRoot> Roots { get; internal init; } = [];

    /// <summary>Directories removed with their subtrees (DDD only), normalised.</summary>
    public IReadOnlyList<string> ExcludePaths { get; internal init; } = [];

    /// <summary>Whether files created, moved in or closed after writing are scanned too.</summary>
    public bool ExtraScanning { get; internal init; }

    /// <summary>Files larger than this are not scanned; <see langword="null"/> means no limit.</summary>
    public long? MaxFileSize { get; internal init; }

    /// <summary>Concurrent scans.</summary>
    public int MaxThreads { get; internal init; }

    /// <summary>Retries of a failed scan.</summary>
    public int RetryAttempts { get; internal init; }

    /// <summary>Whether a failed scan of a held access denies it (after the retries).</summary>
    public bool DenyOnError { get; internal init; }

    /// <summary>The deadline of one scan.</summary>
    public TimeSpan ScanTimeout { get; internal init; }

    /// <summary>Effective UIDs allowed without a scan (UID 0 is listed when root is excluded).</summary>
    public IReadOnlyList<uint> ExcludeUids { get; internal init; } = [];

    /// <summary>User names allowed without a scan; the engine resolves them to UIDs when it starts.</summary>
    public IReadOnlyList<string> ExcludeUnames { get; internal init; } = [];

    /// <summary>Everything the reader and the resolver noticed, in order.</summary>
    public IReadOnlyList<PlanDiagnostic> Diagnostics { get; internal init; } = [];

    /// <summary>Whether any diagnostic is an error, so monitoring must not start.</summary>
    public bool HasErrors => Diagnostics.Any(d => d.Severity == DiagnosticSeverity.Error);

    /// <summary>Resolves options set in code or bound from configuration against the real filesystem.</summary>
    /// <param name="options">The options.</param>
    /// <returns>The plan; check <see cref="HasErrors"/>.</returns>
    public static OnAccessPlan Resolve(OnAccessOptions options) => Resolve(options, source: null);

    /// <summary>Resolves a clamd.conf, with its reader's diagnostics and line numbers.</summary>
    /// <param name="conf">The parsed file.</param>
    /// <returns>The plan; check <see cref="HasErrors"/>.</returns>
    public static OnAccessPlan Resolve(ClamdConf conf)
    {
        ArgumentNullException.ThrowIfNull(conf);
        return Resolve(conf.ToOnAccessOptions(), conf);
    }

    /// <summary>
    /// Resolves options that started from a clamd.conf and may have been changed since (for example by command-line
    /// flags): diagnostics carry the file's line where a value came from it.
    /// </summary>
    /// <param name="options">The effective options.</param>
    /// <param name="source">The file they were read from, or <see langword="null"/>.</param>
    /// <returns>The plan; check <see cref="HasErrors"/>.</returns>
    public static OnAccessPlan Resolve(OnAccessOptions options, ClamdConf? source) =>
        Resolve(options, source, new SystemPlanEnvironment());

    internal static OnAccessPlan Resolve(OnAccessOptions options, ClamdConf? source, IPlanEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(environment);
        return new PlanResolver(options, source, environment).Resolve();
    }

    /// <summary>Whether a normalised path is one of <see cref="ExcludePaths"/> or lies below one.</summary>
    /// <param name="path">An absolute, normalised path.</param>
    /// <returns><see langword="true"/> when the plan excludes it.</returns>
    public bool IsExcluded(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        foreach (var exclude in ExcludePaths)
        {
            if (PathPrefix.IsSameOrUnder(path, exclude))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Throws <see cref="OnAccessPlanException"/> listing every error when the plan has any.</summary>
    /// <exception cref="OnAccessPlanException">The plan has errors.</exception>
    public void ThrowIfInvalid()
    {
        if (HasErrors)
        {
            throw new OnAccessPlanException(Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToArray());
        }
    }
}
