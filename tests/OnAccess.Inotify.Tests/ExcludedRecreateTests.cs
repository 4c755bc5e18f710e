namespace OnAccess.Inotify.Tests;

public sealed class ExcludedRecreateTests
{
    [Fact]
    public async Task An_excluded_directory_deleted_and_recreated_stays_unwatched()
    {
        await using var h = TreeHarness.Start(r => Directory.CreateDirectory(Path.Combine(r, "private", "inner")), excludes: ["private"]);
        Assert.DoesNotContain(h.P("private"), h.Tracked());
        Directory.Delete(h.P("private"), recursive: true);
        Directory.CreateDirectory(h.P("private/inner/deeper"));
        Directory.CreateDirectory(h.P("public"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("public"));
        await h.AssertExactAsync();
        Assert.DoesNotContain(h.Seen, e => e.Path.StartsWith(h.P("private"), StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_include_nested_below_an_exclusion_is_tracked_as_its_own_root()
    {
        await using var h = TreeHarness.Start(
            r => Directory.CreateDirectory(Path.Combine(r, "private", "keep", "deep")),
            excludes: ["private"],
            configure: o => o.Roots.Add(new DirectoryTreeRoot(Path.Combine(o.Roots[0].Path, "private", "keep"))));
        Assert.Contains(h.P("private/keep/deep"), h.Tracked());
        Assert.DoesNotContain(h.P("private"), h.Tracked());
        await h.AssertExactAsync();
    }
}
