namespace OnAccess.Config;

/// <summary>The on-access plan has errors: each names its directive (and file and line, when known).</summary>
public sealed class OnAccessPlanException : Exception
{
    /// <summary>Creates the exception from the plan's errors.</summary>
    /// <param name="errors">The error diagnostics.</param>
    public OnAccessPlanException(IReadOnlyList<PlanDiagnostic> errors)
        : base("The on-access configuration cannot be monitored: " + string.Join(" ", (errors ?? []).Select(e => e.ToString())))
    {
        Errors = errors ?? [];
    }

    /// <summary>The errors, in order.</summary>
    public IReadOnlyList<PlanDiagnostic> Errors { get; }
}
