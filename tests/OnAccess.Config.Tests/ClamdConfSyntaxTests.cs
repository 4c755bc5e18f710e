namespace OnAccess.Config.Tests;

public sealed class ClamdConfSyntaxTests
{
    private static ClamdConfException Fails(string text) =>
        Assert.Throws<ClamdConfException>(() => ClamdConf.Parse(text, "/etc/test/clamd.conf"));

    [Fact]
    public void Comments_blank_lines_and_leading_blanks_are_skipped()
    {
        var conf = ClamdConf.Parse("# a comment\n\n   \t\n  # indented comment\n\tOnAccessPrevention yes\n");
        var entry = Assert.Single(conf.Entries);
        Assert.Equal(new ClamdConfEntry("OnAccessPrevention", "yes", 5), entry);
    }

    [Fact]
    public void An_Example_line_is_an_error_that_says_to_edit_the_example_file()
    {
        var e = Fails("# header\nExample\nOnAccessPrevention yes\n");
        Assert.Equal(2, e.Line);
        Assert.Equal("/etc/test/clamd.conf", e.FilePath);
        Assert.Contains("Edit it", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Directive_names_are_case_sensitive_and_the_error_names_the_right_spelling()
    {
        var e = Fails("onaccessprevention yes\n");
        Assert.Equal("onaccessprevention", e.Directive);
        Assert.Equal(1, e.Line);
        Assert.Contains("did you mean 'OnAccessPrevention'", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_directive_gets_a_did_you_mean_suggestion()
    {
        var e = Fails("OnAccessIncludePaht /home\n");
        Assert.Contains("did you mean 'OnAccessIncludePath'", e.Reason, StringComparison.Ordinal);
        Assert.Contains("/etc/test/clamd.conf:1: OnAccessIncludePaht:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_directive_far_from_every_name_gets_no_suggestion()
    {
        var e = Fails("Zzzzzzzzzzzzzzzzzzzzzzzzz 1\n");
        Assert.DoesNotContain("did you mean", e.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("yes", true)]
    [InlineData("YES", true)]
    [InlineData("True", true)]
    [InlineData("1", true)]
    [InlineData("no", false)]
    [InlineData("No", false)]
    [InlineData("FALSE", false)]
    [InlineData("0", false)]
    public void Bool_accepts_ClamAVs_six_tokens_in_any_case(string token, bool expected) =>
        Assert.Equal(expected, ClamdConf.Parse($"OnAccessPrevention {token}\n").ToOnAccessOptions().Prevention);

    [Theory]
    [InlineData("on")]
    [InlineData("y")]
    [InlineData("2")]
    [InlineData("yes # comment")]
    public void Bool_rejects_anything_else(string token)
    {
        var e = Fails($"OnAccessPrevention {token}\n");
        Assert.Equal("OnAccessPrevention", e.Directive);
        Assert.Contains("not a BOOL", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_trailing_comment_on_a_bool_is_explained()
    {
        var e = Fails("OnAccessPrevention yes # block\n");
        Assert.Contains("no trailing comments", e.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("+3")]
    [InlineData("3.0")]
    [InlineData("0x10")]
    [InlineData("five")]
    public void Number_is_digits_only_without_a_sign(string value)
    {
        var e = Fails($"OnAccessMaxThreads {value}\n");
        Assert.Equal("OnAccessMaxThreads", e.Directive);
    }

    /// <summary>So OA1017, OA1018 and OA1019 see a negative value only from code or configuration binding (PlanRuleTests).</summary>
    [Theory]
    [InlineData("OnAccessMaxThreads")]
    [InlineData("OnAccessRetryAttempts")]
    [InlineData("OnAccessCurlTimeout")]
    public void A_negative_number_is_a_syntax_error_naming_the_directive_and_line(string directive)
    {
        var e = Fails($"OnAccessIncludePath /srv\n{directive} -1\n");
        Assert.Equal(directive, e.Directive);
        Assert.Equal(2, e.Line);
        Assert.Contains("-1", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Number_with_a_leading_zero_is_decimal()
    {
        Assert.Equal(10, ClamdConf.Parse("OnAccessMaxThreads 010\n").ToOnAccessOptions().MaxThreads);
    }

    [Fact]
    public void Number_too_large_is_an_error_naming_the_limit()
    {
        var e = Fails("OnAccessMaxThreads 99999999999\n");
        Assert.Contains("2147483647", e.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1024", 1024L)]
    [InlineData("5K", 5L * 1024)]
    [InlineData("5k", 5L * 1024)]
    [InlineData("5M", 5L * 1024 * 1024)]
    [InlineData("5m", 5L * 1024 * 1024)]
    [InlineData("2G", 2L * 1024 * 1024 * 1024)]
    [InlineData("2g", 2L * 1024 * 1024 * 1024)]
    [InlineData("0", 0L)]
    public void Size_takes_binary_suffixes_in_any_case(string value, long bytes) =>
        Assert.Equal(bytes, ClamdConf.Parse($"OnAccessMaxFileSize {value}\n").ToOnAccessOptions().MaxFileSize);

    [Theory]
    [InlineData("5MB")]
    [InlineData("5T")]
    [InlineData("-5M")]
    [InlineData("M")]
    [InlineData("5 M")]
    public void Size_rejects_other_forms(string value)
    {
        var e = Fails($"OnAccessMaxFileSize {value}\n");
        Assert.Contains("not a SIZE", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Size_with_a_leading_zero_is_decimal_with_a_warning_about_ClamAVs_octal()
    {
        var conf = ClamdConf.Parse("\nOnAccessMaxFileSize 010M\n", "c.conf");
        Assert.Equal(10L * 1024 * 1024, conf.ToOnAccessOptions().MaxFileSize);
        var d = Assert.Single(conf.Diagnostics);
        Assert.Equal(PlanDiagnosticCodes.LeadingZeroSize, d.Code);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
        Assert.Equal(2, d.Line);
        Assert.Contains("octal", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Quoted_values_lose_their_quotes_and_keep_inner_blanks()
    {
        var conf = ClamdConf.Parse("OnAccessIncludePath \"/srv/with space \"\nOnAccessPrevention \"yes\"\n");
        var options = conf.ToOnAccessOptions();
        Assert.Equal(["/srv/with space "], options.IncludePaths);
        Assert.True(options.Prevention);
    }

    [Fact]
    public void Unquoted_values_keep_inner_blanks()
    {
        Assert.Equal(["/srv/a b"], ClamdConf.Parse("OnAccessIncludePath   /srv/a b  \t\n").ToOnAccessOptions().IncludePaths);
    }

    [Theory]
    [InlineData("OnAccessIncludePath \"\"", "empty")]
    [InlineData("OnAccessIncludePath \"/srv", "never closed")]
    [InlineData("OnAccessIncludePath \"/srv\" # comment", "after the closing")]
    [InlineData("OnAccessIncludePath", "needs a value")]
    [InlineData("OnAccessIncludePath    ", "needs a value")]
    public void Malformed_values_are_errors_with_a_sentence(string line, string expected)
    {
        var e = Fails(line + "\n");
        Assert.Equal("OnAccessIncludePath", e.Directive);
        Assert.Contains(expected, e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_repeated_single_valued_directive_keeps_the_first_value_and_warns()
    {
        var conf = ClamdConf.Parse("OnAccessMaxThreads 3\nOnAccessMaxThreads 9\n");
        Assert.Equal(3, conf.ToOnAccessOptions().MaxThreads);
        var d = Assert.Single(conf.Diagnostics);
        Assert.Equal(PlanDiagnosticCodes.RepeatedDirective, d.Code);
        Assert.Equal(2, d.Line);
        Assert.Contains("line 1", d.Message, StringComparison.Ordinal);
        Assert.Single(conf.Entries);
    }

    [Fact]
    public void Repeatable_directives_keep_file_order()
    {
        var conf = ClamdConf.Parse("OnAccessIncludePath /b\nOnAccessExcludeUID 7\nOnAccessIncludePath /a\nOnAccessIncludePath /c\nOnAccessExcludeUID 3\n");
        var options = conf.ToOnAccessOptions();
        Assert.Equal(["/b", "/a", "/c"], options.IncludePaths);
        Assert.Equal([7u, 3u], options.ExcludeUids);
        Assert.Empty(conf.Diagnostics);
    }

    [Fact]
    public void CRLF_files_and_trailing_blanks_work_and_are_noted()
    {
        var conf = ClamdConf.Parse("OnAccessPrevention yes  \r\nOnAccessMaxFileSize 1M\t\r\nOnAccessIncludePath /srv/x \r\n");
        var options = conf.ToOnAccessOptions();
        Assert.True(options.Prevention);
        Assert.Equal(1L << 20, options.MaxFileSize);
        Assert.Equal(["/srv/x"], options.IncludePaths);
        var d = Assert.Single(conf.Diagnostics);
        Assert.Equal(PlanDiagnosticCodes.CrlfLineEndings, d.Code);
        Assert.Equal(DiagnosticSeverity.Info, d.Severity);
    }

    [Fact]
    public void A_final_line_without_newline_is_read_whole()
    {
        Assert.Equal(["/srv/x"], ClamdConf.Parse("OnAccessIncludePath /srv/x").ToOnAccessOptions().IncludePaths);
    }

    [Fact]
    public void Every_other_clamd_directive_is_accepted_and_kept()
    {
        var conf = ClamdConf.Parse("LogFile /var/log/clamav/clamd.log\nMaxScanSize 100M\nExcludePath ^/proc/\nExcludePath ^/sys/\nScanPE yes\nMaxThreads 12\n");
        Assert.Equal("/var/log/clamav/clamd.log", conf.GetValue("LogFile"));
        Assert.Equal(["^/proc/", "^/sys/"], conf.GetValues("ExcludePath"));
        Assert.Equal("12", conf.GetValue("MaxThreads"));
        Assert.Equal(OnAccessOptions.DefaultMaxThreads, conf.ToOnAccessOptions().MaxThreads);
    }

    [Fact]
    public void Other_directives_are_type_checked_too()
    {
        var e = Fails("MaxScanSize lots\n");
        Assert.Equal("MaxScanSize", e.Directive);
    }

    [Fact]
    public void Scanner_connection_directives_are_typed()
    {
        var conf = ClamdConf.Parse("LocalSocket /run/clamav/clamd.ctl\nTCPSocket 3310\nTCPAddr 127.0.0.1\nTCPAddr ::1\nStreamMaxLength 25M\nTemporaryDirectory /var/tmp\n");
        Assert.Equal("/run/clamav/clamd.ctl", conf.LocalSocket);
        Assert.Equal(3310, conf.TcpSocket);
        Assert.Equal(["127.0.0.1", "::1"], conf.TcpAddresses);
        Assert.Equal(25L << 20, conf.StreamMaxLength);
        Assert.Equal("/var/tmp", conf.TemporaryDirectory);
    }

    [Fact]
    public void Connection_defaults_when_absent()
    {
        var conf = ClamdConf.Parse(string.Empty);
        Assert.Null(conf.LocalSocket);
        Assert.Null(conf.TcpSocket);
        Assert.Empty(conf.TcpAddresses);
        Assert.Equal(ClamdConf.DefaultStreamMaxLength, conf.StreamMaxLength);
        Assert.Null(conf.TemporaryDirectory);
    }

    [Fact]
    public void A_TCP_port_out_of_range_is_an_error()
    {
        Assert.Equal("TCPSocket", Fails("TCPSocket 70000\n").Directive);
    }

    [Fact]
    public void Deprecated_directives_are_ignored_with_a_warning()
    {
        var conf = ClamdConf.Parse("ArchiveMaxFiles 3\n");
        Assert.Null(conf.GetValue("ArchiveMaxFiles"));
        var d = Assert.Single(conf.Diagnostics);
        Assert.Equal(PlanDiagnosticCodes.DeprecatedDirective, d.Code);
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
    }

    [Fact]
    public void ScanOnAccess_is_honoured_as_the_guide_describes_with_an_info_note()
    {
        var conf = ClamdConf.Parse("ScanOnAccess no\n");
        Assert.False(conf.ToOnAccessOptions().ScanOnAccess);
        Assert.Equal(DiagnosticSeverity.Info, Assert.Single(conf.Diagnostics).Severity);
        Assert.Null(ClamdConf.Parse(string.Empty).ToOnAccessOptions().ScanOnAccess);
    }

    [Fact]
    public void A_hash_inside_a_string_value_is_kept_with_a_warning()
    {
        var conf = ClamdConf.Parse("OnAccessIncludePath /srv # protected\n");
        Assert.Equal(["/srv # protected"], conf.ToOnAccessOptions().IncludePaths);
        Assert.Equal(PlanDiagnosticCodes.HashInValue, Assert.Single(conf.Diagnostics).Code);
    }

    [Fact]
    public void A_first_ExcludeUID_of_zero_is_warned_about_and_excludes_root()
    {
        var conf = ClamdConf.Parse("OnAccessExcludeUID 0\nOnAccessExcludeUID 1000\n");
        Assert.Equal([0u, 1000u], conf.ToOnAccessOptions().ExcludeUids);
        Assert.Equal(PlanDiagnosticCodes.FirstExcludeUidZero, Assert.Single(conf.Diagnostics).Code);
    }

    [Fact]
    public void ExcludeUID_of_minus_one_as_in_ClamAVs_sample_is_an_error()
    {
        Assert.Equal("OnAccessExcludeUID", Fails("OnAccessExcludeUID -1\n").Directive);
    }

    [Fact]
    public void CurlTimeout_is_the_scan_timeout_in_milliseconds()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(1500), ClamdConf.Parse("OnAccessCurlTimeout 1500\n").ToOnAccessOptions().ScanTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(5000), ClamdConf.Parse(string.Empty).ToOnAccessOptions().ScanTimeout);
    }

    [Fact]
    public void Invalid_UTF8_is_an_error_naming_the_line()
    {
        byte[] bytes = [.. "OnAccessPrevention yes\n"u8, .. "OnAccessIncludePath /a"u8, 0xFF, 0xFE, (byte)'\n'];
        var e = Assert.Throws<ClamdConfException>(() => ClamdConf.Parse(bytes, "x.conf"));
        Assert.Equal(2, e.Line);
        Assert.IsType<System.Text.DecoderFallbackException>(e.InnerException);
    }

    [Fact]
    public void A_byte_order_mark_is_skipped()
    {
        byte[] bytes = [0xEF, 0xBB, 0xBF, .. "OnAccessPrevention yes\n"u8];
        Assert.True(ClamdConf.Parse(bytes).ToOnAccessOptions().Prevention);
    }

    [Fact]
    public void Load_of_a_missing_file_throws_the_config_exception_naming_the_file()
    {
        var path = Path.Combine(Path.GetTempPath(), "onaccess-missing-" + Guid.NewGuid().ToString("N"), "clamd.conf");
        var e = Assert.Throws<ClamdConfException>(() => ClamdConf.Load(path));
        Assert.Equal(path, e.FilePath);
        Assert.Null(e.Line);
    }

    [Fact]
    public void Load_reads_a_file_and_reports_its_path_in_diagnostics()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "OnAccessMaxThreads 2\nOnAccessMaxThreads 3\n");
            var conf = ClamdConf.Load(path);
            Assert.Equal(path, conf.FilePath);
            Assert.Equal(path, Assert.Single(conf.Diagnostics).FilePath);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
