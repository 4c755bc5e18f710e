namespace OnAccess.Inotify.Tests;

public sealed class DeleteSubtreeTests
{
    [Fact]
    public async Task Deleting_a_subtree_drops_every_directory_and_watch()
    {
        await using var h = TreeHarness.Start(r =>
        {
            for (var i = 0; i < 5; i++)
            {
                Directory.CreateDirectory(Path.Combine(r, "big", $"d{i}", "x", "y"));
            }
        });
        Assert.Equal(2 + (5 * 3), h.DirectoryTree.DirectoryCount);
        Directory.Delete(h.P("big"), recursive: true);
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryRemoved, h.P("big"));
        await h.AssertExactAsync();
        Assert.Equal(1, h.DirectoryTree.DirectoryCount);
    }
}
