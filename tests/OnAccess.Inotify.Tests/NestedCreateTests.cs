using OnAccess.Tests;

namespace OnAccess.Inotify.Tests;

public sealed class NestedCreateTests
{
    [Fact]
    public async Task Mkdir_p_of_a_deep_path_adds_every_level()
    {
        await using var h = TreeHarness.Start();
        var result = await KernelTestSupport.RunAsync("/bin/mkdir", "-p", h.P("a/b/c/d/e"));
        Assert.Equal(0, result.ExitCode);
        foreach (var d in new[] { "a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e" })
        {
            await h.WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, h.P(d));
        }

        await h.AssertExactAsync();
    }
}
