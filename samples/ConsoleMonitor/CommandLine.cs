using OnAccess.Config;

namespace ConsoleMonitor;

/// <summary>The parsed command line. Flags override the clamd.conf directives they name.</summary>
internal sealed class CommandLine
{
    public string? Command { get; private set; }

    public string? ConfigPath { get; private set; }

    public List<string> Includes { get; } = [];

    public List<string> Excludes { get; } = [];

    public List<string> Mounts { get; } = [];

    public bool Prevention { get; private set; }

    public bool ExtraScanning { get; private set; }

    public bool DisableDdd { get; private set; }

    public List<uint> ExcludeUids { get; } = [];

    public long? MaxFileSize { get; private set; }

    /// <summary>The scanner asked for with --scanner, or null to choose (see <see cref="ChooseScanner"/>).</summary>
    public string? Scanner { get; private set; }

    /// <summary>--wait: how long start-up waits for clamd to answer.</summary>
    public TimeSpan? Wait { get; private set; }

    public string? Clamd { get; private set; }

    public List<string> Signatures { get; } = [];

    public bool Json { get; private set; }

    public bool NoCache { get; private set; }

    public bool Quiet { get; private set; }

    public bool Help { get; private set; }

    public const string Usage = """
        Usage:
          ConsoleMonitor [--config clamd.conf] [--include DIR]... [--exclude DIR]... [--mount PATH]...
                         [--prevention] [--extra-scanning] [--disable-ddd] [--exclude-uid N]...
                         [--max-file-size SIZE] [--scanner builtin|clamd|allow-all]
                         [--clamd unix:PATH|tcp://HOST:PORT] [--signatures FILE]... [--json]
                         [--wait SECONDS] [--no-cache] [--quiet]
          ConsoleMonitor check-config FILE [--json]

        --no-cache turns off the verdict caches (kernel ignore marks and user-space); --quiet prints no decision
        lines (only ready and stopped). Flags override the file's directives. Without --config, --include and --mount,
        /etc/clamav/clamd.conf is read if it exists (as clamonacc does).
        The scanner: clamd when --clamd is given or the clamd.conf names LocalSocket or TCPSocket, otherwise the
        built-in hash database (EICAR built in, plus --signatures files); --scanner says so explicitly. clamd must
        answer at start-up, or ConsoleMonitor exits 2 naming each endpoint and why; --wait SECONDS waits for it.
        Exit codes: 0 stopped by SIGINT/SIGTERM (or check-config without errors), 1 check-config found errors,
        2 start-up failed.
        """;

    /// <summary>Parses; throws <see cref="ArgumentException"/> with a sentence naming the flag.</summary>
    public static CommandLine Parse(string[] args)
    {
        var c = new CommandLine();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            switch (arg)
            {
                case "check-config" when i == 0:
                    c.Command = "check-config";
                    c.ConfigPath = Value();
                    break;
                case "--config": c.ConfigPath = Value(); break;
                case "--include": c.Includes.Add(Value()); break;
                case "--exclude": c.Excludes.Add(Value()); break;
                case "--mount": c.Mounts.Add(Value()); break;
                case "--prevention": c.Prevention = true; break;
                case "--extra-scanning": c.ExtraScanning = true; break;
                case "--disable-ddd": c.DisableDdd = true; break;
                case "--exclude-uid":
                    var uid = Value();
                    c.ExcludeUids.Add(uint.TryParse(uid, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var u)
                        ? u
                        : throw new ArgumentException($"--exclude-uid '{uid}' is not a UID (decimal digits)."));
                    break;
                case "--max-file-size":
                    c.MaxFileSize = ParseSize(Value());
                    break;
                case "--scanner":
                    c.Scanner = Value();
                    if (c.Scanner is not ("builtin" or "clamd" or "allow-all"))
                    {
                        throw new ArgumentException($"--scanner '{c.Scanner}' is not one of builtin, clamd, allow-all.");
                    }

                    break;
                case "--clamd": c.Clamd = Value(); break;
                case "--wait":
                    var wait = Value();
                    c.Wait = uint.TryParse(wait, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds <= 3600
                        ? TimeSpan.FromSeconds(seconds)
                        : throw new ArgumentException($"--wait '{wait}' is not a number of seconds from 0 to 3600.");
                    break;
                case "--signatures": c.Signatures.Add(Value()); break;
                case "--json": c.Json = true; break;
                case "--no-cache": c.NoCache = true; break;
                case "--quiet": c.Quiet = true; break;
                case "--help" or "-h": c.Help = true; break;
                default: throw new ArgumentException($"Unknown argument '{arg}'.");
            }
        }

        if (c.Scanner is "builtin" or "allow-all" && c.Clamd is not null)
        {
            throw new ArgumentException($"--clamd applies to the clamd scanner, not to --scanner {c.Scanner}.");
        }

        if (c.Scanner is "clamd" or "allow-all" && c.Signatures.Count > 0)
        {
            throw new ArgumentException($"--signatures applies to the built-in scanner, not to --scanner {c.Scanner}.");
        }

        return c;
    }

    /// <summary>
    /// The scanner to use: the one --scanner names; else clamd when --clamd is given or the clamd.conf says where clamd
    /// listens (LocalSocket, TCPSocket), as clamonacc would use it; else the built-in one. A clamd.conf that names clamd
    /// must never be served, silently, by a scanner that only knows EICAR.
    /// </summary>
    public string ChooseScanner(ClamdConf? conf) =>
        Scanner ?? (Clamd is not null || conf?.LocalSocket is not null || conf?.TcpSocket is not null ? "clamd" : "builtin");

    /// <summary>The clamd.conf clamonacc reads when it is given neither a configuration nor paths to watch.</summary>
    public const string SystemConfig = "/etc/clamav/clamd.conf";

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
        foreach (var uid in ExcludeUids)
        {
            options.ExcludeUids.Add(uid);
        }

        if (MaxFileSize is { } size)
        {
            options.MaxFileSize = size;
        }
    }

    /// <summary>A SIZE exactly as clamd.conf reads it (digits with an optional K, M or G).</summary>
    private static long ParseSize(string value)
    {
        try
        {
            return ClamdConf.Parse($"OnAccessMaxFileSize {value}\n").ToOnAccessOptions().MaxFileSize;
        }
        catch (ClamdConfException e)
        {
            throw new ArgumentException($"--max-file-size: {e.Reason}", e);
        }
    }
}
