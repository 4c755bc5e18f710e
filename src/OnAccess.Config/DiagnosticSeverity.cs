namespace OnAccess.Config;

/// <summary>How much a <see cref="PlanDiagnostic"/> matters.</summary>
public enum DiagnosticSeverity
{
    /// <summary>Something the plan did that the user may not expect; nothing is wrong.</summary>
    Info,

    /// <summary>A directive is ignored or read differently from ClamAV; monitoring still starts.</summary>
    Warning,

    /// <summary>The configuration cannot be monitored as written; monitoring does not start.</summary>
    Error,
}
