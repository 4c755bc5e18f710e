namespace OnAccess.ClamAV.Tests;

public sealed class HashDatabaseScannerTests
{
    [Fact]
    public async Task EICAR_is_built_in_with_or_without_a_line_break()
    {
        using var tree = TestFiles.Tree();
        var scanner = new HashDatabaseScanner();
        foreach (var (name, content) in new[] { ("plain", HashDatabaseScanner.EicarTestString), ("lf", HashDatabaseScanner.EicarTestString + "\n"), ("crlf", HashDatabaseScanner.EicarTestString + "\r\n") })
        {
            var result = await TestFiles.ScanAsync(scanner, tree.File(name, content));
            Assert.Equal(ScanVerdict.Infected, result.Verdict);
            Assert.Equal("Eicar-Test-Signature", result.ThreatName);
        }

        Assert.Equal(ScanVerdict.Clean, (await TestFiles.ScanAsync(scanner, tree.File("clean", "hello"))).Verdict);
        Assert.Equal(ScanVerdict.Clean, (await TestFiles.ScanAsync(new HashDatabaseScanner(new HashDatabaseScannerOptions { IncludeEicar = false }), tree.File("e", HashDatabaseScanner.EicarTestString))).Verdict);
    }

    [Fact]
    public async Task An_hdb_with_EICAR_and_clam_exe_detects_both_and_leaves_clean_files_clean()
    {
        using var tree = TestFiles.Tree();
        var clam = TestFiles.ReadClamExe();
        var hdb = tree.File("test.hdb", TestFiles.HdbLine(TestFiles.Eicar, "Test.Eicar") + "\n" + TestFiles.HdbLine(clam, "Test.ClamExe") + "\n");
        var scanner = new HashDatabaseScanner(new HashDatabaseScannerOptions { SignatureFiles = [hdb], IncludeEicar = false });
        Assert.Equal(2, scanner.SignatureCount);
        Assert.Equal("Test.ClamExe", (await TestFiles.ScanAsync(scanner, TestFiles.ClamExe)).ThreatName);
        Assert.Equal("Test.Eicar", (await TestFiles.ScanAsync(scanner, tree.File("eicar.com", HashDatabaseScanner.EicarTestString))).ThreatName);
        Assert.Equal(ScanVerdict.Clean, (await TestFiles.ScanAsync(scanner, tree.File("clean.txt", "clean"))).Verdict);
    }

    [Fact]
    public async Task An_hsb_with_SHA256_SHA1_and_any_size_detects()
    {
        using var tree = TestFiles.Tree();
        var a = "alpha content"u8.ToArray();
        var b = "beta content"u8.ToArray();
        var c = "gamma content of some length"u8.ToArray();
        var hsb = tree.File("test.hsb", string.Join('\n', TestFiles.HsbSha256Line(a, "Test.Sha256"), TestFiles.HsbSha1Line(b, "Test.Sha1"), TestFiles.HsbSha256Line(c, "Test.AnySize", anySize: true)));
        var scanner = new HashDatabaseScanner(new HashDatabaseScannerOptions { SignatureFiles = [hsb] });
        Assert.Equal("Test.Sha256", (await TestFiles.ScanAsync(scanner, tree.File("a", "alpha content"))).ThreatName);
        Assert.Equal("Test.Sha1", (await TestFiles.ScanAsync(scanner, tree.File("b", "beta content"))).ThreatName);
        Assert.Equal("Test.AnySize", (await TestFiles.ScanAsync(scanner, tree.File("c", "gamma content of some length"))).ThreatName);
    }

    [Fact]
    public async Task Files_of_a_size_no_signature_has_are_not_read()
    {
        using var tree = TestFiles.Tree();
        var scanner = new HashDatabaseScanner();
        await TestFiles.ScanAsync(scanner, tree.File("big", new string('x', 100_000)));
        Assert.Equal(0, scanner.BytesHashed);
        await TestFiles.ScanAsync(scanner, tree.File("same-size-as-eicar", new string('y', HashDatabaseScanner.EicarTestString.Length)));
        Assert.Equal(HashDatabaseScanner.EicarTestString.Length, scanner.BytesHashed);
    }

    [Fact]
    public void A_malformed_line_is_reported_with_file_and_line_and_the_rest_loads()
    {
        using var tree = TestFiles.Tree();
        var good = TestFiles.HdbLine("x"u8.ToArray(), "Good.One");
        var hdb = tree.File("bad.hdb", $"{good}\nnot-a-signature\nzz{good[2..]}\n{good[..32]}:-4:Negative\n{good[..32]}:4:\n{TestFiles.HdbLine("y"u8.ToArray(), "Good.Two")}\n");
        var scanner = new HashDatabaseScanner(new HashDatabaseScannerOptions { SignatureFiles = [hdb], IncludeEicar = false });
        Assert.Equal(2, scanner.SignatureCount);
        Assert.Equal([2, 3, 4, 5], scanner.LoadErrors.Select(e => e.Line));
        Assert.All(scanner.LoadErrors, e => Assert.Equal(hdb, e.FilePath));
        Assert.Contains("hash:size:name", scanner.LoadErrors[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_changed_signature_file_is_reloaded_and_the_generation_changes()
    {
        using var tree = TestFiles.Tree();
        var target = tree.File("target", "to be detected later");
        var hdb = tree.File("live.hdb", TestFiles.HdbLine("unrelated"u8.ToArray(), "Other"));
        var scanner = new HashDatabaseScanner(new HashDatabaseScannerOptions { SignatureFiles = [hdb], ReloadCheckInterval = TimeSpan.Zero });
        var before = scanner.Generation;
        Assert.Equal(ScanVerdict.Clean, (await TestFiles.ScanAsync(scanner, target)).Verdict);

        File.WriteAllText(hdb, TestFiles.HdbLine("to be detected later"u8.ToArray(), "Now.Detected") + "\n");
        File.SetLastWriteTimeUtc(hdb, DateTime.UtcNow.AddSeconds(5));
        var after = await TestFiles.ScanAsync(scanner, target);
        Assert.Equal("Now.Detected", after.ThreatName);
        Assert.True(scanner.Generation > before);
    }

    [Fact]
    public async Task Reload_reads_the_changed_files_now_and_reports_their_errors()
    {
        using var tree = TestFiles.Tree();
        var target = tree.File("target", "to be detected after Reload");
        var hdb = tree.File("manual.hdb", TestFiles.HdbLine("unrelated"u8.ToArray(), "Other") + "\n");

        // No automatic check for a day: only Reload() can pick the change up.
        var scanner = new HashDatabaseScanner(new HashDatabaseScannerOptions { SignatureFiles = [hdb], IncludeEicar = false, ReloadCheckInterval = TimeSpan.FromDays(1) });
        Assert.Equal(ScanVerdict.Clean, (await TestFiles.ScanAsync(scanner, target)).Verdict);
        var before = scanner.Generation;

        File.WriteAllText(hdb, TestFiles.HdbLine("to be detected after Reload"u8.ToArray(), "Reloaded.Now") + "\nnot-a-signature\n");
        Assert.Equal(ScanVerdict.Clean, (await TestFiles.ScanAsync(scanner, target)).Verdict);
        Assert.Empty(scanner.LoadErrors);

        scanner.Reload();
        Assert.Equal("Reloaded.Now", (await TestFiles.ScanAsync(scanner, target)).ThreatName);
        Assert.Equal(before + 1, scanner.Generation);
        Assert.Equal(1, scanner.SignatureCount);
        var error = Assert.Single(scanner.LoadErrors);
        Assert.Equal((hdb, 2), (error.FilePath, error.Line));
    }

    [Fact]
    public void A_missing_signature_file_is_a_load_error_not_an_exception()
    {
        var scanner = new HashDatabaseScanner(new HashDatabaseScannerOptions { SignatureFiles = ["/nonexistent/x.hdb"] });
        var error = Assert.Single(scanner.LoadErrors);
        Assert.Equal(0, error.Line);
        Assert.Equal(3, scanner.SignatureCount); // EICAR's three spellings
    }
}
