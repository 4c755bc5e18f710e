namespace OnAccess.Inotify.Tests;

public sealed class RenameRootTests
{
    [Fact]
    public async Task A_renamed_root_is_reported_lost_and_tracked_again_when_it_comes_back()
    {
        await using var h = TreeHarness.Start(r => Directory.CreateDirectory(Path.Combine(r, "child")));
        var away = h.Tree.Combine("away");
        Directory.Move(h.Root, away);
        await h.WaitForAsync(DirectoryTreeEventKind.RootLost, h.Root);
        Assert.Equal(0, h.DirectoryTree.DirectoryCount);

        Directory.Move(away, h.Root);
        await h.WaitForAsync(DirectoryTreeEventKind.RootRestored, h.Root);
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("child"));
        await h.AssertExactAsync();
    }

    [Fact]
    public async Task A_deleted_root_is_reported_lost_and_a_recreated_one_is_tracked()
    {
        await using var h = TreeHarness.Start(r => Directory.CreateDirectory(Path.Combine(r, "child")));
        Directory.Delete(h.Root, recursive: true);
        await h.WaitForAsync(DirectoryTreeEventKind.RootLost, h.Root);
        Directory.CreateDirectory(h.P("again"));
        await h.WaitForAsync(DirectoryTreeEventKind.RootRestored, h.Root);
        await h.AssertExactAsync();
    }
}
