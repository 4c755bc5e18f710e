using System.Text;
using FsCheck;
using FsCheck.Fluent;

namespace OnAccess.Config.Tests;

/// <summary>Properties of the reader and writer, 10,000 cases each.</summary>
public sealed class PropertyTests
{
    private const int Cases = 10_000;

    private static readonly FakePlanEnvironment Env = new FakePlanEnvironment().Dir("/srv", "/srv/a");

    private static readonly string[] ValuePool =
    [
        "yes", "no", "TRUE", "0", "1", "-1", "+5", "5M", "5m", "010", "08", "5MB", "99999999999999999999999", "\"quoted\"",
        "\"\"", "\"open", "/", "//", "/srv", "/srv/a/../a", "relative", "/srv # comment", "\t", " ", "Example", "#", "0x10",
        "4294967295", "4294967294", "2147483648", "65536", "9223372036854775807G", "\u00e9t\u00e9", "\0",
    ];

    private static readonly string[] NameSpellings = [.. ClamdDirectiveTable.ByName.Keys, "Example", "onaccessprevention", "OnAccessIncludePaht", "#OnAccessPrevention", "   OnAccessPrevention", "X"];

    private static Gen<string> PathGen =>
        Gen.Elements('a', 'b', ' ', '"', '#', '\t', '/', '.', '\u00e9', '\\', '\0', '\u2028', '\u0085', '\f', 'Z')
            .ArrayOf()
            .Select(chars => new string(chars))
            .Where(s => s.Length > 0 && s.AsSpan().IndexOfAny('\r', '\n') < 0);

    private static Gen<OnAccessOptions> OptionsGen =>
        from scan in Gen.Elements<bool?>(null, true, false)
        from mounts in PathGen.ListOf()
        from includes in PathGen.ListOf()
        from excludes in PathGen.ListOf()
        from uids in Gen.Choose(0, int.MaxValue).Select(i => (uint)i * 2).ListOf()
        from unames in PathGen.ListOf()
        from bools in Gen.Elements(true, false).ArrayOf(6)
        from size in Gen.OneOf(Gen.Choose(0, int.MaxValue).Select(i => (long)i), Gen.Choose(0, 4096).Select(i => (long)i << 20))
        from threads in Gen.Choose(0, int.MaxValue)
        from retries in Gen.Choose(0, 1000)
        from timeout in Gen.Choose(0, int.MaxValue)
        select new OnAccessOptions
        {
            ScanOnAccess = scan,
            MountPaths = [.. mounts],
            IncludePaths = [.. includes],
            ExcludePaths = [.. excludes],
            ExcludeUids = [.. uids.Where(u => u <= ClamdConf.MaxUid)],
            ExcludeUnames = [.. unames],
            ExcludeRootUid = bools[0],
            DenyOnError = bools[1],
            DisableDdd = bools[2],
            Prevention = bools[3],
            ExtraScanning = bools[4],
            MaxFileSize = size,
            MaxThreads = threads,
            RetryAttempts = retries,
            ScanTimeout = TimeSpan.FromMilliseconds(timeout),
        };

    /// <summary>Lines made of known names (and near misses) and tricky values: reaches every branch of the reader.</summary>
    private static Gen<string> ConfLikeTextGen =>
        (from name in Gen.Elements(NameSpellings)
         from sep in Gen.Elements(" ", "\t", "  ", string.Empty)
         from value in Gen.OneOf(Gen.Elements(ValuePool), ArbMap.Default.GeneratorFor<string>().Select(s => s ?? string.Empty))
         from end in Gen.Elements("\n", "\r\n", " \n", string.Empty)
         select name + sep + value + end)
        .ListOf()
        .Select(lines => string.Concat(lines));

    [Fact]
    public void Options_to_text_to_options_is_the_identity() =>
        Prop.ForAll(OptionsGen.ToArbitrary(), options =>
        {
            var text = ClamdConf.Format(options);
            var back = ClamdConf.Parse(text).ToOnAccessOptions();
            return ClamdConf.Format(back) == text && Same(options, back);
        }).Check(FsCheck.Config.QuickThrowOnFailure.WithMaxTest(Cases));

    [Fact]
    public void Arbitrary_text_gives_options_or_the_config_exception() =>
        Prop.ForAll(Gen.OneOf(ConfLikeTextGen, ArbMap.Default.GeneratorFor<string>().Select(s => s ?? string.Empty)).ToArbitrary(), text =>
            ParsesOrThrowsConfigException(() => ClamdConf.Parse(text, "fuzz.conf"))).Check(FsCheck.Config.QuickThrowOnFailure.WithMaxTest(Cases));

    [Fact]
    public void Arbitrary_bytes_give_options_or_the_config_exception() =>
        Prop.ForAll(Gen.OneOf(ArbMap.Default.GeneratorFor<byte[]>(), ConfLikeTextGen.Select(Encoding.UTF8.GetBytes)).ToArbitrary(), bytes =>
            ParsesOrThrowsConfigException(() => ClamdConf.Parse(bytes ?? [], "fuzz.conf"))).Check(FsCheck.Config.QuickThrowOnFailure.WithMaxTest(Cases));

    private static bool ParsesOrThrowsConfigException(Func<ClamdConf> parse)
    {
        ClamdConf conf;
        try
        {
            conf = parse();
        }
        catch (ClamdConfException e)
        {
            return e.Reason.Length > 0 && e.Line is null or > 0;
        }

        // Whatever parses must also convert, type and resolve without throwing.
        var options = conf.ToOnAccessOptions();
        _ = (conf.LocalSocket, conf.TcpSocket, conf.TcpAddresses, conf.StreamMaxLength, conf.TemporaryDirectory);
        var plan = OnAccessPlan.Resolve(options, conf, Env);
        return plan.Diagnostics.All(d => d.Message.Length > 0);
    }

    private static bool Same(OnAccessOptions a, OnAccessOptions b) =>
        a.ScanOnAccess == b.ScanOnAccess
        && a.MountPaths.SequenceEqual(b.MountPaths)
        && a.IncludePaths.SequenceEqual(b.IncludePaths)
        && a.ExcludePaths.SequenceEqual(b.ExcludePaths)
        && a.ExcludeUids.SequenceEqual(b.ExcludeUids)
        && a.ExcludeUnames.SequenceEqual(b.ExcludeUnames)
        && a.ExcludeRootUid == b.ExcludeRootUid
        && a.MaxFileSize == b.MaxFileSize
        && a.MaxThreads == b.MaxThreads
        && a.RetryAttempts == b.RetryAttempts
        && a.DenyOnError == b.DenyOnError
        && a.DisableDdd == b.DisableDdd
        && a.Prevention == b.Prevention
        && a.ExtraScanning == b.ExtraScanning
        && a.ScanTimeout == b.ScanTimeout;
}
