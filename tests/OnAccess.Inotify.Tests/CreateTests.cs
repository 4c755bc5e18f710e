namespace OnAccess.Inotify.Tests;

public sealed class CreateTests
{
    [Fact]
    public async Task A_created_directory_is_added_and_watched()
    {
        await using var h = TreeHarness.Start(r => Directory.CreateDirectory(Path.Combine(r, "existing")));
        Assert.Equal([h.Root, h.P("existing")], h.Tracked());
        Directory.CreateDirectory(h.P("new"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("new"));
        Directory.CreateDirectory(h.P("existing/inner"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("existing/inner"));
        await h.AssertExactAsync();
    }

    [Fact]
    public async Task Files_are_reported_when_asked_for()
    {
        await using var h = TreeHarness.Start(reportFiles: true);
        File.WriteAllText(h.P("f.txt"), "x");
        await h.WaitForAsync(DirectoryTreeEventKind.FileCreated, h.P("f.txt"));
        await h.WaitForAsync(DirectoryTreeEventKind.FileClosedWrite, h.P("f.txt"));
        File.WriteAllText(h.Tree.Combine("outside.txt"), "y");
        File.Move(h.Tree.Combine("outside.txt"), h.P("moved.txt"));
        await h.WaitForAsync(DirectoryTreeEventKind.FileMovedIn, h.P("moved.txt"));
    }

    [Fact]
    public async Task Symbolic_links_to_directories_are_not_followed()
    {
        await using var h = TreeHarness.Start(r => Directory.CreateDirectory(Path.Combine(r, "real")));
        Directory.CreateDirectory(h.Tree.Combine("elsewhere", "deep"));
        Directory.CreateSymbolicLink(h.P("link"), h.Tree.Combine("elsewhere"));
        await h.AssertExactAsync();
        Assert.DoesNotContain(h.P("link"), h.Tracked());
    }
}

[Collection("Mounts")]
public sealed class NestedMountTests
{
    /// <remarks>
    /// A filesystem mounted over a tracked directory after start is not seen (inotify reports no mounts); the tracker
    /// covers nested mounts that exist when it starts, and everything created inside them afterwards.
    /// </remarks>
    [Fact]
    public async Task A_nested_mount_is_tracked_like_any_directory_with_an_info_event()
    {
        OnAccess.Tests.KernelTestSupport.RequireRoot();
        await using var h = await TreeHarness.StartAsync(async (tree, root) =>
        {
            var mount = await tree.MountTmpfsAsync("root/mnt");
            Directory.CreateDirectory(Path.Combine(mount, "existing"));
        });
        await h.WaitForAsync(DirectoryTreeEventKind.NestedMount, h.P("mnt"));
        Assert.Contains(h.P("mnt/existing"), h.Tracked());
        Directory.CreateDirectory(h.P("mnt/inside"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("mnt/inside"));
        await h.AssertExactAsync();
    }
}
