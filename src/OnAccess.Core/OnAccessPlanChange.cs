using System.Globalization;
using OnAccess.Config;

namespace OnAccess;

/// <summary>One thing a reload changed, named by its clamd.conf directive.</summary>
/// <param name="Directive">The directive (<c>OnAccessIncludePath</c>, <c>OnAccessPrevention</c>, ...; <c>Scanner</c> when the scanner was replaced).</param>
/// <param name="Before">Its value before, or null for a path that was added.</param>
/// <param name="After">Its value now, or null for a path that was removed.</param>
public sealed record OnAccessPlanChange(string Directive, string? Before, string? After)
{
    /// <summary>What differs between two plans: a path added or removed is one change; a setting is one change.</summary>
    internal static IReadOnlyList<OnAccessPlanChange> Between(OnAccessPlan before, OnAccessPlan after, bool scannerReplaced)
    {
        var changes = new List<OnAccessPlanChange>();
        Setting(changes, "ScanOnAccess", Yes(before.Enabled), Yes(after.Enabled));
        Setting(changes, "OnAccessPrevention", Yes(before.Prevention), Yes(after.Prevention));
        if (before.Mode == OnAccessMode.IncludePaths && after.Mode == OnAccessMode.IncludePaths)
        {
            Setting(changes, "OnAccessDisableDDD", Yes(!before.DynamicDirectoryDetermination), Yes(!after.DynamicDirectoryDetermination)); // applies to include paths only
        }

        Setting(changes, "OnAccessExtraScanning", Yes(before.ExtraScanning), Yes(after.ExtraScanning));
        Setting(changes, "OnAccessMaxFileSize", Size(before.MaxFileSize), Size(after.MaxFileSize));
        Setting(changes, "OnAccessMaxThreads", Number(before.MaxThreads), Number(after.MaxThreads));
        Setting(changes, "OnAccessRetryAttempts", Number(before.RetryAttempts), Number(after.RetryAttempts));
        Setting(changes, "OnAccessDenyOnError", Yes(before.DenyOnError), Yes(after.DenyOnError));
        Setting(changes, "OnAccessCurlTimeout", Number((long)before.ScanTimeout.TotalMilliseconds), Number((long)after.ScanTimeout.TotalMilliseconds));
        Paths(changes, RootDirective, before, after, p => p.Roots.Select(r => r.Path + (r.Recursive ? string.Empty : " (top only)")));
        Paths(changes, _ => "OnAccessExcludePath", before, after, p => p.ExcludePaths);
        Paths(changes, _ => "OnAccessExcludeUID", before, after, p => p.ExcludeUids.Select(u => Number(u)));
        Paths(changes, _ => "OnAccessExcludeUname", before, after, p => p.ExcludeUnames);
        if (scannerReplaced)
        {
            changes.Add(new("Scanner", "the previous scanner", "a new scanner"));
        }

        return changes;
    }

    private static string RootDirective(OnAccessPlan plan) => plan.Mode == OnAccessMode.MountPaths ? "OnAccessMountPath" : "OnAccessIncludePath";

    private static void Setting(List<OnAccessPlanChange> changes, string directive, string before, string after)
    {
        if (before != after)
        {
            changes.Add(new(directive, before, after));
        }
    }

    /// <summary>Values of a directive that may be given many times: each one removed, then each one added.</summary>
    private static void Paths(List<OnAccessPlanChange> changes, Func<OnAccessPlan, string> directive, OnAccessPlan before, OnAccessPlan after, Func<OnAccessPlan, IEnumerable<string>> values)
    {
        var old = values(before).ToHashSet(StringComparer.Ordinal);
        var now = values(after).ToHashSet(StringComparer.Ordinal);
        var sameDirective = directive(before) == directive(after);
        changes.AddRange(old.Where(v => !sameDirective || !now.Contains(v)).Order(StringComparer.Ordinal).Select(v => new OnAccessPlanChange(directive(before), v, null)));
        changes.AddRange(now.Where(v => !sameDirective || !old.Contains(v)).Order(StringComparer.Ordinal).Select(v => new OnAccessPlanChange(directive(after), null, v)));
    }

    private static string Yes(bool value) => value ? "yes" : "no";

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Size(long? value) => value is { } size ? Number(size) : "unlimited";
}
