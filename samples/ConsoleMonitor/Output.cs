using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OnAccess;
using OnAccess.Config;

namespace ConsoleMonitor;

/// <summary>Writes what happened to stdout: one readable line, or one JSON object per line (--json).</summary>
internal sealed class Output(bool json) : IOnAccessObserver
{
    /// <summary>Decision lines are written when this much is kept, whether or not their run has ended.</summary>
    private const int PendingLimit = 64 * 1024;

    private readonly Lock _gate = new();
    private readonly StringBuilder _pending = new();
    private readonly Stream _stdout = Console.OpenStandardOutput();

    public bool Json { get; } = json;

    public void OnEvent(OnAccessEvent e)
    {
        if (Json)
        {
            Buffer(JsonLine(w =>
            {
                w.WriteString("event", "decision");
                w.WriteString("time", DateTimeOffset.Now.ToString("O", CultureInfo.InvariantCulture));
                w.WriteString("path", e.Path);
                if (e.RawPath is { } raw && !System.Text.Unicode.Utf8.IsValid(raw))
                {
                    // "path" shows U+FFFD for bytes that are not UTF-8; this is the name exactly.
                    w.WriteBase64String("pathBase64", raw);
                }

                w.WriteNumber("pid", e.ProcessId);
                if (e.UserId is { } uid)
                {
                    w.WriteNumber("uid", uid);
                }
                else
                {
                    w.WriteNull("uid");
                }

                w.WriteString("kind", Kind(e.Kind));
                w.WriteString("verdict", Verdict(e));
                w.WriteString("threat", e.ThreatName);
                w.WriteString("decision", e.Decision.ToString().ToLowerInvariant());
                w.WriteString("reason", Reason(e.Reason));
                w.WriteNumber("latencyUs", (long)e.Latency.TotalMicroseconds);
                if (e.Detail is not null)
                {
                    w.WriteString("detail", e.Detail);
                }
            }));
            return;
        }

        // A file name (and a threat name) is someone else's text: escaped, it can neither end the line nor drive the terminal.
        var path = e.RawPath is { } bytes ? OnAccessText.Escape(bytes) : OnAccessText.Escape(e.Path) ?? "?";
        var threat = e.ThreatName is null ? string.Empty : OnAccessText.Escape(e.ThreatName) + " ";
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{DateTimeOffset.Now:HH:mm:ss.fff} {e.Decision.ToString().ToUpperInvariant(),-5} {Verdict(e),-8} {threat}{path} pid={e.ProcessId} uid={e.UserId?.ToString(CultureInfo.InvariantCulture) ?? "?"} kind={Kind(e.Kind)} reason={Reason(e.Reason)} {e.Latency.TotalMicroseconds:F0}us");
        Buffer(line);
    }

    /// <summary>The decisions delivered so far are written, in one write (not one per decision).</summary>
    public void OnEventsDelivered()
    {
        lock (_gate)
        {
            WritePending();
        }
    }

    public void Ready(OnAccessPlan plan, OnAccessStatistics statistics, string scanner, string scannerText, string? config)
    {
        if (Json)
        {
            WriteJson(w =>
            {
                w.WriteString("event", "ready");
                w.WriteString("mode", Mode(plan));
                w.WriteBoolean("prevention", plan.Prevention);
                w.WriteBoolean("ddd", plan.DynamicDirectoryDetermination);
                w.WriteString("scanner", scanner);
                w.WriteString("scannerDetail", scannerText);
                if (config is not null)
                {
                    w.WriteString("config", config);
                }

                w.WriteNumber("markedDirectories", statistics.MarkedDirectories);
            });
        }
        else
        {
            WriteLine($"ready: {Mode(plan)} mode, prevention {(plan.Prevention ? "on" : "off")}, DDD {(plan.DynamicDirectoryDetermination ? "on" : "off")}, {statistics.MarkedDirectories} directories marked, scanner {scannerText}{(config is null ? string.Empty : ", configuration " + config)}. Ctrl+C stops.");
        }
    }

    /// <summary>An action on a detection (--move, --copy, --remove, VirusEvent): one line each.</summary>
    public void OnAction(OnAccessActionEvent e)
    {
        var outcome = e.Outcome.ToString().ToLowerInvariant();
        if (Json)
        {
            WriteJson(w =>
            {
                w.WriteString("event", "action");
                w.WriteString("time", DateTimeOffset.Now.ToString("O", CultureInfo.InvariantCulture));
                w.WriteString("action", e.Action);
                w.WriteString("path", e.Path);
                if (e.RawPath is { } raw && !System.Text.Unicode.Utf8.IsValid(raw))
                {
                    w.WriteBase64String("pathBase64", raw);
                }

                w.WriteString("threat", e.ThreatName);
                w.WriteNumber("pid", e.ProcessId);
                w.WriteString("outcome", outcome);
                w.WriteString("detail", e.Detail);
                w.WriteString("id", e.Id);
            });
            return;
        }

        var path = e.RawPath is { } bytes ? OnAccessText.Escape(bytes) : OnAccessText.Escape(e.Path) ?? "?";
        WriteLine(string.Create(CultureInfo.InvariantCulture, $"{DateTimeOffset.Now:HH:mm:ss.fff} ACTION {e.Action} {outcome} {OnAccessText.Escape(e.ThreatName)} {path}: {OnAccessText.Escape(e.Detail)}"));
    }

    /// <summary>quarantine list: the entries, in text or one JSON array.</summary>
    public static void Entries(bool json, IReadOnlyList<QuarantineEntry> entries)
    {
        if (!json)
        {
            foreach (var e in entries)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{e.Id} {e.Time:yyyy-MM-dd HH:mm:ss} {e.Action} {OnAccessText.Escape(e.Threat)} {OnAccessText.Escape(e.OriginalRawPath)} {e.Size} bytes uid={e.Uid} mode={Convert.ToString(e.Mode, 8)} sha256={e.Sha256}{(e.OriginalRemoved || e.Action == "copy" ? string.Empty : " (original not removed: " + OnAccessText.Escape(e.Detail) + ")")}"));
            }

            return;
        }

        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartArray();
            foreach (var e in entries)
            {
                e.WriteTo(w); // the record's own form
            }

            w.WriteEndArray();
        }

        Console.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
    }

    /// <summary>A reload applied (SIGHUP): each change by directive, and what is protected now.</summary>
    public void Reloaded(IReadOnlyList<OnAccessPlanChange> changes, OnAccessStatistics s, IReadOnlyList<string>? clamd)
    {
        if (Json)
        {
            WriteJson(w =>
            {
                w.WriteString("event", "reloaded");
                w.WriteStartArray("changes");
                foreach (var c in changes)
                {
                    w.WriteStartObject();
                    w.WriteString("directive", c.Directive);
                    w.WriteString("before", c.Before);
                    w.WriteString("after", c.After);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                if (clamd is not null)
                {
                    w.WriteStartArray("clamd");
                    foreach (var endpoint in clamd)
                    {
                        w.WriteStringValue(endpoint);
                    }

                    w.WriteEndArray();
                }

                w.WriteNumber("markedDirectories", s.MarkedDirectories);
            });
        }
        else
        {
            var text = changes.Count == 0 ? "nothing changed" : string.Join("; ", changes.Select(c => c.Before is null ? $"{c.Directive} +{c.After}" : c.After is null ? $"{c.Directive} -{c.Before}" : $"{c.Directive} {c.Before} -> {c.After}"));
            WriteLine($"reloaded: {text}; {s.MarkedDirectories} directories marked{(clamd is null ? string.Empty : ", clamd " + string.Join(", ", clamd))}");
        }
    }

    /// <summary>A reload refused: the running configuration stays.</summary>
    public void ReloadRefused(string reason)
    {
        if (Json)
        {
            WriteJson(w =>
            {
                w.WriteString("event", "reload-refused");
                w.WriteString("reason", reason);
            });
        }
        else
        {
            WriteLine($"reload refused, the running configuration stays: {OnAccessText.Escape(reason)}");
        }
    }

    /// <summary>The periodic status line (--status-interval): health and the counters.</summary>
    public void Status(HealthCheckResult health, OnAccessStatistics s) => Counters("status", health, s);

    /// <summary>The last line: the counters, and the health seen just before the monitor stopped.</summary>
    public void Stopped(OnAccessStatistics s, HealthCheckResult? health) => Counters("stopped", health, s);

    /// <summary>--version, in text or JSON.</summary>
    public static void Version(bool json, string program, string library, string dotnet, IReadOnlyList<(string Endpoint, string? Version, string? Error)> clamd, string? confError)
    {
        if (!json)
        {
            Console.WriteLine($"ConsoleMonitor {program} (OnAccess {library}, .NET {dotnet})");
            foreach (var (endpoint, version, error) in clamd)
            {
                Console.WriteLine($"clamd {endpoint}: {version ?? "no answer (" + error + ")"}");
            }

            if (confError is not null)
            {
                Console.WriteLine($"clamd: unknown, the configuration cannot be read: {confError}");
            }

            return;
        }

        Console.WriteLine(JsonLine(w =>
        {
            w.WriteString("event", "version");
            w.WriteString("consoleMonitor", program);
            w.WriteString("onAccess", library);
            w.WriteString("dotnet", dotnet);
            w.WriteStartArray("clamd");
            foreach (var (endpoint, version, error) in clamd)
            {
                w.WriteStartObject();
                w.WriteString("endpoint", endpoint);
                w.WriteString("version", version);
                w.WriteString("error", error);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            if (confError is not null)
            {
                w.WriteString("configError", confError);
            }
        }));
    }

    private void Counters(string name, HealthCheckResult? health, OnAccessStatistics s)
    {
        if (Json)
        {
            WriteJson(w =>
            {
                w.WriteString("event", name);
                if (health is { } h)
                {
                    w.WriteString("health", h.Status.ToString().ToLowerInvariant());
                    w.WriteString("healthDescription", h.Description);
                }

                w.WriteNumber("markedDirectories", s.MarkedDirectories);
                w.WriteNumber("events", s.Events);
                w.WriteNumber("scans", s.Scans);
                w.WriteNumber("allowed", s.Allowed);
                w.WriteNumber("denied", s.Denied);
                w.WriteNumber("infected", s.Infected);
                w.WriteNumber("errors", s.Errors);
                w.WriteNumber("skipped", s.Skipped);
                w.WriteNumber("queueFull", s.QueueFull);
                w.WriteNumber("overflows", s.Overflows);
                w.WriteNumber("kernelDenied", s.KernelDenied);
                w.WriteNumber("timeouts", s.Timeouts);
                w.WriteNumber("unscanned", s.Unscanned);
                w.WriteNumber("unprotectedDirectories", s.UnprotectedDirectories);
                w.WriteNumber("hungScans", s.HungScans);
                w.WriteNumber("outsideOpens", s.OutsideOpens);
                w.WriteNumber("ignoredOutsideDirectories", s.IgnoredOutsideDirectories);
            });
        }
        else
        {
            var state = health is { } h ? $"{h.Status.ToString().ToLowerInvariant()} ({h.Description}); " : string.Empty;
            WriteLine($"{name}: {state}{s.Events} events, {s.Scans} scans, {s.Allowed} allowed, {s.Denied} denied, {s.Infected} infected, {s.Errors} errors, {s.Timeouts} timeouts, {s.Skipped} skipped, {s.QueueFull} queue-full, {s.Unscanned} unscanned, {s.Overflows} overflows, {s.UnprotectedDirectories} directories unprotected, {s.HungScans} hung scans{(s.OutsideOpens > 0 ? $", {s.OutsideOpens} opens outside the tree answered at once ({s.IgnoredOutsideDirectories} directories ignored)" : string.Empty)}");
        }
    }

    public static string PlanJson(OnAccessPlan plan)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteBoolean("enabled", plan.Enabled);
            w.WriteString("mode", Mode(plan));
            w.WriteBoolean("prevention", plan.Prevention);
            w.WriteBoolean("ddd", plan.DynamicDirectoryDetermination);
            w.WriteStartArray("roots");
            foreach (var r in plan.Roots)
            {
                w.WriteStartObject();
                w.WriteString("path", r.Path);
                w.WriteBoolean("recursive", r.Recursive);
                w.WriteString("marking", Marking(r.Marking));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("excludePaths");
            foreach (var e in plan.ExcludePaths)
            {
                w.WriteStringValue(e);
            }

            w.WriteEndArray();
            w.WriteBoolean("extraScanning", plan.ExtraScanning);
            if (plan.MaxFileSize is { } max)
            {
                w.WriteNumber("maxFileSize", max);
            }
            else
            {
                w.WriteNull("maxFileSize");
            }

            WriteDiagnostics(w, plan.Diagnostics);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static string ErrorJson(ClamdConfException e)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteBoolean("enabled", false);
            w.WriteString("mode", "disabled");
            w.WriteString("file", e.FilePath);
            WriteDiagnostics(w, [new PlanDiagnostic("OA0001", DiagnosticSeverity.Error, e.Directive is null ? [] : [e.Directive], e.Reason, e.FilePath, e.Line)]);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static string PlanText(OnAccessPlan plan)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"enabled: {(plan.Enabled ? "yes" : "no")}\nmode: {Mode(plan)}\nprevention: {(plan.Prevention ? "yes" : "no")}\nDDD: {(plan.DynamicDirectoryDetermination ? "yes" : "no")}\n");
        foreach (var r in plan.Roots)
        {
            text.Append(CultureInfo.InvariantCulture, $"watch: {r.Path}{(r.Recursive ? " (and every subdirectory)" : " (this directory's files only)")}, {MarkingText(r.Marking)}\n");
        }

        foreach (var e in plan.ExcludePaths)
        {
            text.Append(CultureInfo.InvariantCulture, $"exclude: {e}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"extra scanning: {(plan.ExtraScanning ? "yes" : "no")}\nmax file size: {(plan.MaxFileSize is { } m ? m.ToString(CultureInfo.InvariantCulture) + " bytes" : "unlimited")}\n");
        foreach (var d in plan.Diagnostics)
        {
            text.Append(d).Append('\n');
        }

        return text.ToString();
    }

    private static string Marking(RootMarking marking) => marking switch
    {
        RootMarking.DirectoryTree => "directoryTree",
        RootMarking.Filesystem => "filesystem",
        RootMarking.Directory => "directory",
        RootMarking.FilesystemSubtree => "filesystemSubtree",
        _ => "mount",
    };

    private static string MarkingText(RootMarking marking) => marking switch
    {
        RootMarking.DirectoryTree => "marked directory by directory",
        RootMarking.Filesystem => "one filesystem mark",
        RootMarking.Directory => "one directory mark",
        RootMarking.FilesystemSubtree => "one mark on the filesystem that holds it (no window; opens elsewhere on it answered at once)",
        _ => "one mount mark",
    };

    private static void WriteDiagnostics(Utf8JsonWriter w, IEnumerable<PlanDiagnostic> diagnostics)
    {
        w.WriteStartArray("diagnostics");
        foreach (var d in diagnostics)
        {
            w.WriteStartObject();
            w.WriteString("code", d.Code);
            w.WriteString("severity", d.Severity.ToString().ToLowerInvariant());
            w.WriteStartArray("directives");
            foreach (var directive in d.Directives)
            {
                w.WriteStringValue(directive);
            }

            w.WriteEndArray();
            if (d.Line is { } line)
            {
                w.WriteNumber("line", line);
            }
            else
            {
                w.WriteNull("line");
            }

            w.WriteString("message", d.Message);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static string Mode(OnAccessPlan plan) => plan.Mode switch
    {
        OnAccessMode.IncludePaths => "include",
        OnAccessMode.MountPaths => "mount",
        _ => "disabled",
    };

    private static string Kind(AccessKind kind) => kind switch
    {
        AccessKind.CloseWrite => "close-write",
        AccessKind.MovedIn => "moved-in",
        _ => kind.ToString().ToLowerInvariant(),
    };

    private static string Verdict(OnAccessEvent e) => e.Verdict switch
    {
        ScanVerdict.Clean => "clean",
        ScanVerdict.Infected => "infected",
        ScanVerdict.Error => "error",
        _ => "skipped",
    };

    private static string Reason(DecisionReason reason) => reason switch
    {
        DecisionReason.ExcludedUser => "excluded-user",
        DecisionReason.ExcludedPath => "excluded-path",
        DecisionReason.TooLarge => "too-large",
        DecisionReason.NotRegularFile => "not-regular-file",
        DecisionReason.QueueFull => "queue-full",
        DecisionReason.ScanError => "scan-error",
        _ => reason.ToString().ToLowerInvariant(),
    };

    private void WriteJson(Action<Utf8JsonWriter> write) => WriteLine(JsonLine(write));

    /// <summary>One JSON object, as one line.</summary>
    private static string JsonLine(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>Any other line: after the decisions buffered before it.</summary>
    private void WriteLine(string line)
    {
        lock (_gate)
        {
            WritePending();
            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }
    }

    /// <summary>A decision's line: kept until the run of decisions it is part of has been delivered (or much is kept).</summary>
    private void Buffer(string line)
    {
        lock (_gate)
        {
            _pending.Append(line).Append('\n');
            if (_pending.Length >= PendingLimit)
            {
                WritePending();
            }
        }
    }

    /// <summary>One write(2) for everything kept (Console.Out would write it a few hundred bytes at a time).</summary>
    private void WritePending()
    {
        if (_pending.Length > 0)
        {
            var bytes = Encoding.UTF8.GetBytes(_pending.ToString());
            _pending.Clear();
            _stdout.Write(bytes);
            _stdout.Flush();
        }
    }
}
