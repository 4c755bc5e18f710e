using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using OnAccess.Config;

namespace ConsoleMonitor;

/// <summary>
/// The parsed command line (System.CommandLine): every flag, the clamd.conf directive it sets, and its checks. Flags
/// override the directives they name. Parse errors name the flag and exit 2 before anything starts.
/// </summary>
internal sealed class CommandLine
{
    /// <summary>The clamd.conf clamonacc reads when it is given neither a configuration nor paths to watch.</summary>
    public const string SystemConfig = "/etc/clamav/clamd.conf";

    /// <summary>What follows a parse error on stderr.</summary>
    public const string TryHelp = "Usage: ConsoleMonitor [options] | ConsoleMonitor check-config FILE [--json] | ConsoleMonitor quarantine list|restore ID|delete ID --store DIR. --help explains every flag.";

    private static readonly Option<string?> ConfigOption = new("--config")
    {
        HelpName = "FILE",
        Description = $"A clamd.conf, read as clamonacc reads it; the flags below add to or override its directives. Without --config, --include and --mount, {SystemConfig} is read if it exists (as clamonacc does).",
    };

    private static readonly Option<string[]> IncludeOption = Many("--include", "DIR", "Protects DIR and every directory below it (adds an OnAccessIncludePath). Relative paths are made absolute.");

    private static readonly Option<string[]> ExcludeOption = Many("--exclude", "DIR", "Leaves DIR and what is below it unprotected (adds an OnAccessExcludePath).");

    private static readonly Option<string[]> MountOption = Many("--mount", "PATH", "Protects the whole filesystem mounted at PATH (adds an OnAccessMountPath; notify-only, as the guide says).");

    private static readonly Option<bool> PreventionOption = new("--prevention") { Description = "Holds every open of a protected file until it is scanned, and denies infected files (OnAccessPrevention yes). Without it, opens are reported, not held." };

    private static readonly Option<bool> ExtraScanningOption = new("--extra-scanning") { Description = "Also scans files as they are created, moved in, or written and closed (OnAccessExtraScanning yes)." };

    private static readonly Option<bool> DisableDddOption = new("--disable-ddd") { Description = "Protects the include paths themselves only, not the directories below them (OnAccessDisableDDD yes)." };

    private static readonly Option<string?> TreeMarkingOption = new("--tree-marking")
    {
        HelpName = "directories|filesystem",
        Description = "How include paths that are not whole filesystems are protected (no clamd.conf directive). directories (the default): a mark on each directory as the tracker finds it, as clamonacc does; a directory made or moved in a moment ago is not yet checked. filesystem: one mark on the filesystem that holds the path, so nothing in the tree is ever unchecked; every open elsewhere on that filesystem is held too and answered at once (directories no user can move into the tree are then ignored by the kernel). Also read by check-config.",
        Recursive = true,
    };

    private static readonly Option<string[]> ExcludeUidOption = Many("--exclude-uid", "N", "Never holds an open by user N (adds an OnAccessExcludeUID).");

    private static readonly Option<string?> MaxFileSizeOption = new("--max-file-size")
    {
        HelpName = "SIZE",
        Description = "Files larger than SIZE are allowed unscanned (OnAccessMaxFileSize: digits with an optional K, M or G).",
    };

    private static readonly Option<string?> ScannerOption = new("--scanner")
    {
        HelpName = "builtin|clamd|allow-all",
        Description = "The scanner. Without it: clamd when --clamd is given or the clamd.conf names LocalSocket or TCPSocket, else builtin (the in-process hash database, EICAR built in). allow-all scans nothing (to measure the engine).",
    };

    private static readonly Option<string[]> ClamdOption = new("--clamd")
    {
        HelpName = "unix:PATH|tcp://HOST:PORT",
        Description = "clamd's endpoint, instead of the clamd.conf's LocalSocket/TCPSocket/TCPAddr; repeat it for a farm (each scan goes to the endpoint with the fewest scans in flight; one that keeps failing is ejected and probed back in). One must answer PING at start-up, or ConsoleMonitor exits 2 naming each endpoint and why.",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    private static readonly Option<string?> WaitOption = new("--wait")
    {
        HelpName = "SECONDS",
        Description = "Waits up to SECONDS (0-3600) for clamd to answer at start-up (clamonacc's --wait).",
    };

    private static readonly Option<string[]> SignaturesOption = Many("--signatures", "FILE", "Adds a signature file (.hdb, .hsb) to the built-in scanner.");

    private static readonly Option<bool> JsonOption = new("--json") { Description = "Writes one JSON object per line (ready, decision, status, stopped) instead of text.", Recursive = true };

    private static readonly Option<bool> NoCacheOption = new("--no-cache") { Description = "Turns off the verdict caches (kernel ignore marks and user-space): every open is scanned." };

    private static readonly Option<bool> QuietOption = new("--quiet") { Description = "Writes no decision lines (only ready, status and stopped)." };

    private static readonly Option<string?> LogOption = new("--log")
    {
        HelpName = "FILE",
        Description = "Writes the logs to FILE (appended, created 0640) instead of stderr; SIGHUP reopens it (logrotate).",
    };

    private static readonly Option<string?> StatusIntervalOption = new("--status-interval")
    {
        HelpName = "SECONDS",
        Description = "Writes a status line every SECONDS (1-86400): health (Healthy, Degraded, Unhealthy and why) and the counters.",
    };

    private static readonly Option<string?> MoveOption = new("--move")
    {
        HelpName = "DIR",
        Description = "Moves each infected file into the quarantine DIR (created 0700): its content, read from the descriptor that was scanned, then the original removed if its path still names that file (clamonacc's --move). ConsoleMonitor quarantine lists and restores.",
    };

    private static readonly Option<string?> CopyOption = new("--copy")
    {
        HelpName = "DIR",
        Description = "Copies each infected file into the quarantine DIR; the original stays (clamonacc's --copy).",
    };

    private static readonly Option<bool> RemoveOption = new("--remove") { Description = "Removes each infected file, if its path still names the file that was scanned (clamonacc's --remove)." };

    private static readonly Option<string> StoreOption = new("--store")
    {
        HelpName = "DIR",
        Description = "The quarantine directory (as given to --move or --copy).",
        Required = true,
        Recursive = true,
    };

    private static readonly Option<string?> ToOption = new("--to")
    {
        HelpName = "PATH",
        Description = "Restores to PATH instead of the recorded path (needed when the recorded path was not shown to name the file).",
    };

    private static readonly Argument<string> EntryArgument = new("ID") { Description = "The entry's id (from quarantine list)." };

    private static readonly Option<bool> VersionOption = new("--version") { Description = "Prints the version (and clamd's, when clamd is the scanner) and exits." };

    private static readonly Argument<string> CheckConfigFile = new("FILE") { Description = "The clamd.conf to check." };

    static CommandLine()
    {
        ExcludeUidOption.Validators.Add(r => Check(r, v => ParseUid(v) is null ? $"--exclude-uid '{v}' is not a UID (decimal digits)." : null));
        MaxFileSizeOption.Validators.Add(r => Check(r, SizeError));
        ScannerOption.Validators.Add(r => Check(r, v => v is "builtin" or "clamd" or "allow-all" ? null : $"--scanner '{v}' is not one of builtin, clamd, allow-all."));
        TreeMarkingOption.Validators.Add(r => Check(r, v => v is "directories" or "filesystem" ? null : $"--tree-marking '{v}' is not one of directories, filesystem."));
        WaitOption.Validators.Add(r => Check(r, v => ParseSeconds(v, 0, 3600) is null ? $"--wait '{v}' is not a number of seconds from 0 to 3600." : null));
        StatusIntervalOption.Validators.Add(r => Check(r, v => ParseSeconds(v, 1, 86_400) is null ? $"--status-interval '{v}' is not a number of seconds from 1 to 86400." : null));
    }

    public string? ConfigPath { get; private init; }

    public IReadOnlyList<string> Includes { get; private init; } = [];

    public IReadOnlyList<string> Excludes { get; private init; } = [];

    public IReadOnlyList<string> Mounts { get; private init; } = [];

    public bool Prevention { get; private init; }

    public bool ExtraScanning { get; private init; }

    public bool DisableDdd { get; private init; }

    /// <summary>--tree-marking, or null when not given (the options' own value stands).</summary>
    public TreeMarking? TreeMarking { get; private init; }

    public IReadOnlyList<uint> ExcludeUids { get; private init; } = [];

    public long? MaxFileSize { get; private init; }

    /// <summary>The scanner asked for with --scanner, or null to choose (see <see cref="ChooseScanner"/>).</summary>
    public string? Scanner { get; private init; }

    /// <summary>--wait: how long start-up waits for clamd to answer.</summary>
    public TimeSpan? Wait { get; private init; }

    /// <summary>--clamd, each time it is given: the clamd endpoints (a farm when several).</summary>
    public IReadOnlyList<string> Clamd { get; private init; } = [];

    public IReadOnlyList<string> Signatures { get; private init; } = [];

    public bool Json { get; private init; }

    public bool NoCache { get; private init; }

    public bool Quiet { get; private init; }

    /// <summary>--log: the file logs go to (null: stderr).</summary>
    public string? LogPath { get; private init; }

    /// <summary>--status-interval: how often a status line is written (null: never).</summary>
    public TimeSpan? StatusInterval { get; private init; }

    public bool Version { get; private init; }

    /// <summary>--move or --copy: the quarantine directory.</summary>
    public string? QuarantinePath { get; private init; }

    /// <summary>--move (true) or --copy (false).</summary>
    public bool QuarantineMoves { get; private init; }

    /// <summary>--remove.</summary>
    public bool Remove { get; private init; }

    /// <summary>
    /// The command line's grammar: the monitor (the root command) and check-config. Response files (<c>@FILE</c>) are
    /// off: an argument is what it says.
    /// </summary>
    /// <param name="monitor">Runs the monitor.</param>
    /// <param name="checkConfig">Checks a clamd.conf (path, --json, --tree-marking).</param>
    /// <param name="quarantine">Manages a quarantine: the command (list, restore, delete), the store, the entry, --json.</param>
    public static ParseResult Parse(string[] args, Func<CommandLine, CancellationToken, Task<int>> monitor, Func<string, bool, TreeMarking?, int> checkConfig, Func<string, string, string?, string?, bool, int> quarantine)
    {
        var root = new RootCommand("On-access scanning with ClamAV's configuration: every open of a protected file is held (--prevention) or reported until the scanner has looked at it. Flags override the clamd.conf directives they name. Exit codes: 0 stopped by SIGINT or SIGTERM, or check-config without errors; 1 check-config found errors; 2 bad arguments or start-up failed. Signals: SIGINT/SIGTERM stop; SIGHUP reads the clamd.conf again and applies it with the flags, without a gap (a reloaded or reload-refused line says what happened), and reopens the --log file.");
        foreach (var option in root.Options.OfType<System.CommandLine.VersionOption>().ToList())
        {
            root.Options.Remove(option); // ours also names clamd's version, which needs the other flags
        }

        Option[] options = [ConfigOption, IncludeOption, ExcludeOption, MountOption, PreventionOption, ExtraScanningOption, DisableDddOption, TreeMarkingOption, ExcludeUidOption, MaxFileSizeOption, ScannerOption, ClamdOption, WaitOption, SignaturesOption, JsonOption, NoCacheOption, QuietOption, LogOption, StatusIntervalOption, MoveOption, CopyOption, RemoveOption, VersionOption];
        foreach (var option in options)
        {
            root.Options.Add(option);
        }

        root.Validators.Add(CheckCombinations);
        root.SetAction((result, cancellationToken) => monitor(From(result), cancellationToken));

        var check = new Command("check-config", "Prints the effective plan of a clamd.conf and every diagnostic with its code; exits 1 when there are errors. Reading it fails with the file, line and directive named.");
        check.Arguments.Add(CheckConfigFile);
        check.SetAction(result => checkConfig(result.GetValue(CheckConfigFile)!, result.GetValue(JsonOption), result.GetValue(TreeMarkingOption) is { } marking ? ParseTreeMarking(marking) : null));
        root.Subcommands.Add(check);

        var store = new Command("quarantine", "Manages a quarantine made by --move or --copy: list its entries, restore one (content, owner and mode put back where it was, never over an existing file), or delete one.");
        store.Options.Add(StoreOption);
        var list = new Command("list", "Lists the entries: id, threat, original path, size, SHA-256, time, action.");
        list.SetAction(result => quarantine("list", result.GetValue(StoreOption)!, null, null, result.GetValue(JsonOption)));
        var restore = new Command("restore", "Puts the entry back where it was, with its owner and mode; refuses to overwrite a file; the entry goes.");
        restore.Arguments.Add(EntryArgument);
        restore.Options.Add(ToOption);
        restore.SetAction(result => quarantine("restore", result.GetValue(StoreOption)!, result.GetValue(EntryArgument), result.GetValue(ToOption), result.GetValue(JsonOption)));
        var delete = new Command("delete", "Deletes the entry.");
        delete.Arguments.Add(EntryArgument);
        delete.SetAction(result => quarantine("delete", result.GetValue(StoreOption)!, result.GetValue(EntryArgument), null, result.GetValue(JsonOption)));
        store.Subcommands.Add(list);
        store.Subcommands.Add(restore);
        store.Subcommands.Add(delete);
        root.Subcommands.Add(store);
        return root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
    }

    /// <summary>
    /// The scanner to use: the one --scanner names; else clamd when --clamd is given or the clamd.conf says where clamd
    /// listens (LocalSocket, TCPSocket), as clamonacc would use it; else the built-in one. A clamd.conf that names clamd
    /// must never be served, silently, by a scanner that only knows EICAR.
    /// </summary>
    public string ChooseScanner(ClamdConf? conf) =>
        Scanner ?? (Clamd.Count > 0 || conf?.LocalSocket is not null || conf?.TcpSocket is not null ? "clamd" : "builtin");

    /// <summary>
    /// The clamd.conf to read: --config; else, with no --include and no --mount either, <see cref="SystemConfig"/> if it
    /// exists (as clamonacc does); else none.
    /// </summary>
    public string? ChooseConfig() =>
        ConfigPath ?? (Includes.Count == 0 && Mounts.Count == 0 && File.Exists(SystemConfig) ? SystemConfig : null);

    /// <summary>Applies the flags on top of the options read from the file (or the defaults).</summary>
    public void ApplyTo(OnAccessOptions options)
    {
        if (Includes.Count > 0)
        {
            options.IncludePaths = [.. options.IncludePaths, .. Includes.Select(Path.GetFullPath)];
        }

        if (Excludes.Count > 0)
        {
            options.ExcludePaths = [.. options.ExcludePaths, .. Excludes.Select(Path.GetFullPath)];
        }

        if (Mounts.Count > 0)
        {
            options.MountPaths = [.. options.MountPaths, .. Mounts.Select(Path.GetFullPath)];
        }

        options.Prevention |= Prevention;
        options.ExtraScanning |= ExtraScanning;
        options.DisableDdd |= DisableDdd;
        if (TreeMarking is { } marking)
        {
            options.TreeMarking = marking;
        }
        foreach (var uid in ExcludeUids)
        {
            options.ExcludeUids.Add(uid);
        }

        if (MaxFileSize is { } size)
        {
            options.MaxFileSize = size;
        }
    }

    private static Option<string[]> Many(string name, string helpName, string description) => new(name)
    {
        HelpName = helpName,
        Description = description + " May be given more than once.",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    private static CommandLine From(ParseResult r) => new()
    {
        ConfigPath = r.GetValue(ConfigOption),
        Includes = r.GetValue(IncludeOption) ?? [],
        Excludes = r.GetValue(ExcludeOption) ?? [],
        Mounts = r.GetValue(MountOption) ?? [],
        Prevention = r.GetValue(PreventionOption),
        ExtraScanning = r.GetValue(ExtraScanningOption),
        DisableDdd = r.GetValue(DisableDddOption),
        TreeMarking = r.GetValue(TreeMarkingOption) is { } marking ? ParseTreeMarking(marking) : null,
        ExcludeUids = [.. (r.GetValue(ExcludeUidOption) ?? []).Select(v => ParseUid(v)!.Value)],
        MaxFileSize = r.GetValue(MaxFileSizeOption) is { } size ? ParseSize(size) : null,
        Scanner = r.GetValue(ScannerOption),
        Clamd = r.GetValue(ClamdOption) ?? [],
        Wait = r.GetValue(WaitOption) is { } wait ? ParseSeconds(wait, 0, 3600) : null,
        Signatures = r.GetValue(SignaturesOption) ?? [],
        Json = r.GetValue(JsonOption),
        NoCache = r.GetValue(NoCacheOption),
        Quiet = r.GetValue(QuietOption),
        LogPath = r.GetValue(LogOption) is { } log ? Path.GetFullPath(log) : null,
        StatusInterval = r.GetValue(StatusIntervalOption) is { } interval ? ParseSeconds(interval, 1, 86_400) : null,
        Version = r.GetValue(VersionOption),
        QuarantinePath = (r.GetValue(MoveOption) ?? r.GetValue(CopyOption)) is { } quarantine ? Path.GetFullPath(quarantine) : null,
        QuarantineMoves = r.GetValue(MoveOption) is not null,
        Remove = r.GetValue(RemoveOption),
    };

    /// <summary>
    /// Flags that contradict each other, refused before anything starts. What depends on the scanner chosen from the
    /// clamd.conf (--wait, --signatures) is checked once it is read (MonitorCommand).
    /// </summary>
    private static void CheckCombinations(CommandResult r)
    {
        var scanner = r.GetValue(ScannerOption);
        if (scanner is "builtin" or "allow-all" && r.GetValue(ClamdOption) is { Length: > 0 })
        {
            r.AddError($"--clamd applies to the clamd scanner, not to --scanner {scanner}.");
        }

        var actions = new[] { r.GetValue(MoveOption) is not null ? "--move" : null, r.GetValue(CopyOption) is not null ? "--copy" : null, r.GetValue(RemoveOption) ? "--remove" : null }.OfType<string>().ToList();
        if (actions.Count > 1)
        {
            r.AddError($"{string.Join(" and ", actions)} cannot be combined: a file is moved, copied or removed.");
        }
    }

    private static void Check(OptionResult r, Func<string, string?> error)
    {
        foreach (var token in r.Tokens)
        {
            if (error(token.Value) is { } message)
            {
                r.AddError(message);
                return;
            }
        }
    }

    private static uint? ParseUid(string value) =>
        uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var uid) ? uid : null;

    private static TimeSpan? ParseSeconds(string value, uint min, uint max) =>
        uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds >= min && seconds <= max ? TimeSpan.FromSeconds(seconds) : null;

    private static string? SizeError(string value)
    {
        try
        {
            ParseSize(value);
            return null;
        }
        catch (ClamdConfException e)
        {
            return $"--max-file-size: {e.Reason}";
        }
    }

    /// <summary>A SIZE exactly as clamd.conf reads it (digits with an optional K, M or G).</summary>
    private static TreeMarking ParseTreeMarking(string value) => value == "filesystem" ? OnAccess.Config.TreeMarking.Filesystem : OnAccess.Config.TreeMarking.Directories;

    private static long ParseSize(string value) => ClamdConf.Parse($"OnAccessMaxFileSize {value}\n").ToOnAccessOptions().MaxFileSize;
}
