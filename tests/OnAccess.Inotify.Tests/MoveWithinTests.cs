namespace OnAccess.Inotify.Tests;

public sealed class MoveWithinTests
{
    [Fact]
    public async Task A_directory_moved_within_the_tree_is_relinked_not_rebuilt()
    {
        await using var h = TreeHarness.Start(r =>
        {
            Directory.CreateDirectory(Path.Combine(r, "a", "sub", "deep"));
            Directory.CreateDirectory(Path.Combine(r, "b"));
        });
        Directory.Move(h.P("a/sub"), h.P("b/renamed"));
        var moved = await h.WaitForAsync(DirectoryTreeEventKind.DirectoryMoved, h.P("b/renamed"));
        Assert.Equal(h.P("a/sub"), moved.OldPath);
        await h.AssertExactAsync();
        Assert.Contains(h.P("b/renamed/deep"), h.Tracked());
        Assert.DoesNotContain(h.Seen, e => e.Kind == DirectoryTreeEventKind.DirectoryRemoved && e.Path.StartsWith(h.P("a/sub"), StringComparison.Ordinal));

        // The relinked subtree is still watched under its new name.
        Directory.CreateDirectory(h.P("b/renamed/deep/new"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("b/renamed/deep/new"));
    }

    [Fact]
    public async Task A_directory_moved_under_an_exclusion_is_dropped()
    {
        await using var h = TreeHarness.Start(r => Directory.CreateDirectory(Path.Combine(r, "a", "sub")), excludes: ["skip"]);
        Directory.CreateDirectory(h.P("skip"));
        Directory.Move(h.P("a/sub"), h.P("skip/sub"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryRemoved, h.P("a/sub")); // excluded directories are not watched: to the tree this is a move out
        await h.AssertExactAsync();
    }
}
