namespace OnAccess.Inotify.Tests;

public sealed class MoveOutTests
{
    [Fact]
    public async Task A_directory_moved_out_is_dropped_with_its_subtree_and_its_watches()
    {
        await using var h = TreeHarness.Start(r => Directory.CreateDirectory(Path.Combine(r, "leaving", "child", "grandchild")));
        Assert.Equal(4, h.DirectoryTree.DirectoryCount);
        Directory.Move(h.P("leaving"), h.Tree.Combine("gone"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryRemoved, h.P("leaving/child/grandchild"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryRemoved, h.P("leaving"));
        await h.AssertExactAsync();

        // Changes in the moved-out tree are no longer seen.
        Directory.CreateDirectory(h.Tree.Combine("gone", "later"));
        await h.QuiesceAsync();
        Assert.DoesNotContain(h.Seen, e => e.Path.Contains("later", StringComparison.Ordinal));
    }
}
