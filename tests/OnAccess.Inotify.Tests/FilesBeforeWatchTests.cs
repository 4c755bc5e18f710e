using OnAccess.Tests;

namespace OnAccess.Inotify.Tests;

/// <summary>A new directory is watched first, then enumerated: what was made inside it before its watch is reported.</summary>
public sealed class FilesBeforeWatchTests
{
    [Fact]
    public async Task Directories_and_files_made_in_a_new_directory_before_its_watch_are_reported()
    {
        await using var h = TreeHarness.Start(reportFiles: true);
        // One child process creates the directory and its content back to back, faster than any watch can be added.
        var script = $"mkdir '{h.P("d")}' && echo x > '{h.P("d/f1")}' && mkdir -p '{h.P("d/sub/deeper")}' && echo y > '{h.P("d/sub/f2")}'";
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/bin/sh", "-c", script)).ExitCode);
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("d"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("d/sub"));
        await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P("d/sub/deeper"));
        await h.WaitForAsync(DirectoryTreeEventKind.FileCreated, h.P("d/f1"));
        await h.WaitForAsync(DirectoryTreeEventKind.FileCreated, h.P("d/sub/f2"));
        await h.AssertExactAsync();
    }
}
