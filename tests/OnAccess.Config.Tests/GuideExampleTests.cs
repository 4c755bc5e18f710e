using System.Globalization;
using System.Text;

namespace OnAccess.Config.Tests;

/// <summary>
/// The four "Configuration Examples" of the ClamAV on-access guide, with their home directories replaced by a temp
/// tree (example A keeps <c>/</c>, the one mount point every machine has), resolved against the real filesystem.
/// </summary>
public sealed class GuideExampleTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("onaccess-guide-").FullName;

    public GuideExampleTests()
    {
        foreach (var d in new[] { "home/user/Downloads", "home/user2", "home/user4", "home/user/dir1", "home/user/dir2" })
        {
            Directory.CreateDirectory(Path.Combine(_root, d));
        }
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void A_watch_entire_filesystem() => AssertGolden(
        """
        ScanOnAccess yes
        OnAccessMountPath /
        OnAccessExcludeUID 0
        """,
        """
        enabled=True mode=MountPaths prevention=False ddd=False extra=False maxFileSize=5242880 threads=5 timeoutMs=5000
        root / recursive=True marking=Mount
        excludeUids 0
        line 1 OA2003 Info [ScanOnAccess]
        line 3 OA2005 Warning [OnAccessExcludeUID]
        """);

    [Fact]
    public void B_watching_select_users_home_directories() => AssertGolden(
        """
        ScanOnAccess yes
        OnAccessIncludePath {T}/home
        OnAccessExcludePath {T}/home/user2
        OnAccessExcludePath {T}/home/user4
        OnAccessExtraScanning yes
        """,
        """
        enabled=True mode=IncludePaths prevention=False ddd=True extra=True maxFileSize=5242880 threads=5 timeoutMs=5000
        root {T}/home recursive=True marking=DirectoryTree
        exclude {T}/home/user2
        exclude {T}/home/user4
        line 1 OA2003 Info [ScanOnAccess]
        """);

    [Fact]
    public void C_protecting_a_directory_recursively() => AssertGolden(
        """
        ScanOnAccess yes
        OnAccessIncludePath {T}/home/user/Downloads
        OnAccessPrevention yes
        OnAccessExtraScanning yes
        """,
        """
        enabled=True mode=IncludePaths prevention=True ddd=True extra=True maxFileSize=5242880 threads=5 timeoutMs=5000
        root {T}/home/user/Downloads recursive=True marking=DirectoryTree
        line 1 OA2003 Info [ScanOnAccess]
        """);

    [Fact]
    public void D_protecting_multiple_dirs_non_recursively() => AssertGolden(
        """
        ScanOnAccess yes
        OnAccessIncludePath {T}/home/user/dir1
        OnAccessIncludePath {T}/home/user/dir2
        OnAccessPrevention yes
        OnAccessDisableDDD yes
        """,
        """
        enabled=True mode=IncludePaths prevention=True ddd=False extra=False maxFileSize=5242880 threads=5 timeoutMs=5000
        root {T}/home/user/dir1 recursive=False marking=Directory
        root {T}/home/user/dir2 recursive=False marking=Directory
        line 1 OA2003 Info [ScanOnAccess]
        line 5 OA1005 Info [OnAccessDisableDDD,OnAccessIncludePath]
        """);

    private void AssertGolden(string conf, string expected)
    {
        var plan = OnAccessPlan.Resolve(ClamdConf.Parse(conf.Replace("{T}", _root, StringComparison.Ordinal), "guide.conf"));
        Assert.Equal(expected.Replace("{T}", _root, StringComparison.Ordinal), Render(plan));
    }

    internal static string Render(OnAccessPlan plan)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"enabled={plan.Enabled} mode={plan.Mode} prevention={plan.Prevention} ddd={plan.DynamicDirectoryDetermination} extra={plan.ExtraScanning} maxFileSize={plan.MaxFileSize?.ToString(CultureInfo.InvariantCulture) ?? "unlimited"} threads={plan.MaxThreads} timeoutMs={plan.ScanTimeout.TotalMilliseconds}");
        foreach (var root in plan.Roots)
        {
            text.Append(CultureInfo.InvariantCulture, $"\nroot {root.Path} recursive={root.Recursive} marking={root.Marking}");
        }

        foreach (var exclude in plan.ExcludePaths)
        {
            text.Append(CultureInfo.InvariantCulture, $"\nexclude {exclude}");
        }

        if (plan.ExcludeUids.Count > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"\nexcludeUids {string.Join(',', plan.ExcludeUids)}");
        }

        foreach (var d in plan.Diagnostics)
        {
            text.Append(CultureInfo.InvariantCulture, $"\nline {d.Line?.ToString(CultureInfo.InvariantCulture) ?? "-"} {d.Code} {d.Severity} [{string.Join(',', d.Directives)}]");
        }

        return text.ToString();
    }
}
