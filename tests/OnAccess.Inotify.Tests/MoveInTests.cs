namespace OnAccess.Inotify.Tests;

public sealed class MoveInTests
{
    [Fact]
    public async Task A_directory_moved_in_is_added_with_its_subtree()
    {
        await using var h = TreeHarness.Start();
        var outside = h.Tree.Combine("outside");
        Directory.CreateDirectory(Path.Combine(outside, "x", "y"));
        Directory.Move(outside, h.P("in"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("in"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("in/x"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("in/x/y"));
        await h.AssertExactAsync();
    }
}
