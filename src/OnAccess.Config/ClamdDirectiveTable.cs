using System.Collections.Frozen;

namespace OnAccess.Config;

/// <summary>The value syntax of a clamd.conf directive, as ClamAV's option parser checks it.</summary>
internal enum DirectiveType
{
    /// <summary><c>yes/no/true/false/1/0</c>, any case.</summary>
    Bool,

    /// <summary>Decimal digits only, no sign.</summary>
    Number,

    /// <summary>Decimal digits with an optional <c>K</c>, <c>M</c> or <c>G</c> suffix (binary multiples).</summary>
    Size,

    /// <summary>The rest of the line, optionally in double quotes.</summary>
    String,
}

/// <summary>One row of the directive table.</summary>
/// <param name="Name">The directive's name, matched case-sensitively.</param>
/// <param name="Type">Its value syntax.</param>
/// <param name="Repeatable">Whether values accumulate in file order (ClamAV's FLAG_MULTIPLE).</param>
/// <param name="Deprecated">Whether ClamAV 1.4 ignores the directive with a warning.</param>
internal sealed record ClamdDirective(string Name, DirectiveType Type, bool Repeatable = false, bool Deprecated = false);

/// <summary>Every directive that clamd 1.4 accepts in clamd.conf.</summary>
internal static class ClamdDirectiveTable
{
    public static readonly FrozenDictionary<string, ClamdDirective> ByName = Build().ToFrozenDictionary(d => d.Name, StringComparer.Ordinal);

    private static IEnumerable<ClamdDirective> Build()
    {
        const DirectiveType B = DirectiveType.Bool, N = DirectiveType.Number, Z = DirectiveType.Size, S = DirectiveType.String;

        // On-access directives (typed into OnAccessOptions).
        yield return new(ClamdDirectiveNames.ScanOnAccess, B, Deprecated: true);
        yield return new(ClamdDirectiveNames.MountPath, S, Repeatable: true);
        yield return new(ClamdDirectiveNames.IncludePath, S, Repeatable: true);
        yield return new(ClamdDirectiveNames.ExcludePath, S, Repeatable: true);
        yield return new(ClamdDirectiveNames.ExcludeRootUid, B);
        yield return new(ClamdDirectiveNames.ExcludeUid, N, Repeatable: true);
        yield return new(ClamdDirectiveNames.ExcludeUname, S, Repeatable: true);
        yield return new(ClamdDirectiveNames.MaxFileSize, Z);
        yield return new(ClamdDirectiveNames.MaxThreads, N);
        yield return new(ClamdDirectiveNames.CurlTimeout, N);
        yield return new(ClamdDirectiveNames.RetryAttempts, N);
        yield return new(ClamdDirectiveNames.DenyOnError, B);
        yield return new(ClamdDirectiveNames.DisableDdd, B);
        yield return new(ClamdDirectiveNames.Prevention, B);
        yield return new(ClamdDirectiveNames.ExtraScanning, B);

        // Connection directives (typed on ClamdConf).
        yield return new(ClamdDirectiveNames.LocalSocket, S);
        yield return new(ClamdDirectiveNames.TcpSocket, N);
        yield return new(ClamdDirectiveNames.TcpAddr, S, Repeatable: true);
        yield return new(ClamdDirectiveNames.StreamMaxLength, Z);
        yield return new(ClamdDirectiveNames.TemporaryDirectory, S);

        // Every other clamd directive: accepted, checked for syntax and kept.
        foreach (var name in new[]
        {
            "LogFile", "LogFacility", "PidFile", "DatabaseDirectory", "LocalSocketGroup", "LocalSocketMode", "VirusEvent",
            "User", "BytecodeSecurity", "BytecodeMode", "PreludeAnalyzerName",
        })
        {
            yield return new(name, S);
        }

        foreach (var name in new[] { "ExcludePath", "ExcludePUA", "IncludePUA" })
        {
            yield return new(name, S, Repeatable: true);
        }

        foreach (var name in new[]
        {
            "LogFileUnlock", "LogTime", "LogClean", "LogSyslog", "LogVerbose", "LogRotate", "ExtendedDetectionInfo",
            "OfficialDatabaseOnly", "FixStaleSocket", "FollowDirectorySymlinks", "FollowFileSymlinks", "CrossFilesystems",
            "ConcurrentDatabaseReload", "DisableCache", "ExitOnOOM", "AllowAllMatchScan", "Foreground", "Debug",
            "LeaveTemporaryFiles", "GenerateMetadataJson", "Bytecode", "BytecodeUnsigned", "DetectPUA", "HeuristicAlerts",
            "HeuristicScanPrecedence", "ScanPE", "ScanELF", "ScanMail", "ScanPartialMessages", "PhishingSignatures",
            "PhishingScanURLs", "StructuredDataDetection", "StructuredCCOnly", "StructuredSSNFormatNormal",
            "StructuredSSNFormatStripped", "ScanHTML", "ScanOLE2", "ScanPDF", "ScanSWF", "ScanXMLDOCS", "ScanHWP3",
            "ScanOneNote", "ScanArchive", "ScanImage", "ScanImageFuzzyHash", "AlertBrokenExecutables", "AlertBrokenMedia",
            "AlertEncrypted", "AlertEncryptedArchive", "AlertEncryptedDoc", "AlertOLE2Macros", "AlertExceedsMax",
            "AlertPhishingSSLMismatch", "AlertPhishingCloak", "AlertPartitionIntersection", "ForceToDisk", "DisableCertCheck",
            "PreludeEnable", "AlgorithmicDetection", "BlockMax", "PhishingAlwaysBlockSSLMismatch", "PhishingAlwaysBlockCloak",
            "PartitionIntersection", "OLE2BlockMacros", "ArchiveBlockEncrypted", "DevACOnly", "DevPerformance", "DevLiblog",
        })
        {
            yield return new(name, B);
        }

        foreach (var name in new[]
        {
            "FailIfCvdOlderThan", "MaxConnectionQueueLength", "StreamMinPort", "StreamMaxPort", "MaxThreads", "ReadTimeout",
            "CommandReadTimeout", "SendBufTimeout", "MaxQueue", "IdleTimeout", "MaxDirectoryRecursion", "SelfCheck",
            "BytecodeTimeout", "StructuredMinCreditCardCount", "StructuredMinSSNCount", "CacheSize", "MaxScanTime",
            "MaxRecursion", "MaxFiles", "MaxPartitions", "MaxIconsPE", "MaxRecHWP3", "PCREMatchLimit", "PCRERecMatchLimit",
            "DevACDepth",
        })
        {
            yield return new(name, N);
        }

        foreach (var name in new[]
        {
            "LogFileMaxSize", "MaxScanSize", "MaxFileSize", "MaxEmbeddedPE", "MaxHTMLNormalize", "MaxHTMLNoTags",
            "MaxScriptNormalize", "MaxZipTypeRcg", "PCREMaxFileSize",
        })
        {
            yield return new(name, Z);
        }

        // Deprecated in ClamAV 1.4: parsed, warned about, and ignored.
        yield return new("DetectBrokenExecutables", B, Deprecated: true);
        yield return new("MailFollowURLs", B, Deprecated: true);
        yield return new("AllowSupplementaryGroups", B, Deprecated: true);
        yield return new("ArchiveBlockMax", B, Deprecated: true);
        yield return new("ArchiveLimitMemoryUsage", B, Deprecated: true);
        yield return new("MailMaxRecursion", N, Deprecated: true);
        yield return new("ArchiveMaxRecursion", N, Deprecated: true);
        yield return new("ArchiveMaxFiles", N, Deprecated: true);
        yield return new("ArchiveMaxCompressionRatio", N, Deprecated: true);
        yield return new("ArchiveMaxScanSize", Z, Deprecated: true);
    }
}
