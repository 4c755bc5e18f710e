using System.Collections.Concurrent;
using OnAccess.Tests;

namespace OnAccess.Inotify.Tests;

/// <summary>
/// The handler seam (<see cref="IDirectoryTreeHandler"/>): what it is given, in which order, and what the tree does
/// when it refuses a directory or the kernel refuses a watch (WatchFailed, retries, ProtectionRestored).
/// </summary>
public sealed class HandlerTests
{
    /// <summary>
    /// A directory is handed over (with a descriptor of it) before its entries are read, once; a rename inside hands
    /// nothing over; a directory moved out is handed back with a descriptor opened by its file handle, which is the
    /// same directory at its new place.
    /// </summary>
    [Fact]
    public async Task A_directory_is_handed_over_once_and_one_moved_out_is_handed_back_wherever_it_went()
    {
        var handler = new RecordingHandler();
        await using var h = TreeHarness.Start(r => Directory.CreateDirectory(Path.Combine(r, "a", "b")), configure: o => o.Handler = handler);
        await h.QuiesceAsync();
        var a = new DirectoryInfo(h.P("a"));
        Assert.Single(handler.Added, d => d.Path == h.P("a"));
        Assert.Single(handler.Added, d => d.Path == h.P("a/b"));
        Assert.All(handler.Added, d => Assert.Equal(d.Inode, d.DescriptorInode)); // the descriptor is the directory itself

        Directory.Move(h.P("a/b"), h.P("a/c")); // a rename inside: still tracked, nothing handed over again
        await h.QuiesceAsync();
        Assert.Equal(2, handler.Added.Count(d => d.Path.StartsWith(h.P("a"), StringComparison.Ordinal)));
        Assert.DoesNotContain(handler.Removed, d => d.Path.StartsWith(h.P("a"), StringComparison.Ordinal));

        var outside = h.Tree.Combine("outside");
        Directory.CreateDirectory(outside);
        var inodeOfA = handler.Added.Single(d => d.Path == h.P("a")).Inode;
        Directory.Move(a.FullName, Path.Combine(outside, "a"));
        await h.QuiesceAsync();

        var removed = Assert.Single(handler.Removed, d => d.Inode == inodeOfA);
        Assert.Equal(inodeOfA, removed.DescriptorInode);
        Assert.Equal(Path.Combine(outside, "a"), removed.DescriptorPath); // found by its handle at its new place
        Assert.Contains(handler.Removed, d => d.DescriptorPath == Path.Combine(outside, "a", "c")); // with its subtree
    }

    /// <summary>
    /// A directory the handler cannot protect is not tracked (nothing under it either), is reported once
    /// (WatchFailed, UnprotectedCount) and tried again with backoff; once the handler accepts it, it and its subtree
    /// are tracked and ProtectionRestored says so.
    /// </summary>
    [Fact]
    public async Task A_directory_the_handler_refuses_is_tried_again_until_it_is_protected()
    {
        var handler = new RecordingHandler { Refuse = "refused" };
        await using var h = TreeHarness.Start(configure: o =>
        {
            o.Handler = handler;
            o.RetryInitialDelay = TimeSpan.FromMilliseconds(20);
        });
        Directory.CreateDirectory(h.P("refused/sub"));

        var failed = await h.WaitForAsync(DirectoryTreeEventKind.WatchFailed, h.P("refused"));
        Assert.Contains("cannot protect", failed.Reason, StringComparison.Ordinal);
        Assert.Equal(1, h.DirectoryTree.UnprotectedCount);
        Assert.DoesNotContain(h.P("refused"), h.Tracked());
        Assert.DoesNotContain(h.P("refused/sub"), h.Tracked());
        await Until(() => handler.Refusals >= 3); // tried again, and refused again
        Assert.Single(h.Seen, e => e.Kind == DirectoryTreeEventKind.WatchFailed); // reported once

        handler.Refuse = null;
        await h.WaitForAsync(DirectoryTreeEventKind.ProtectionRestored, h.P("refused"));
        await h.QuiesceAsync();
        Assert.Equal(0, h.DirectoryTree.UnprotectedCount);
        Assert.Contains(h.P("refused/sub"), h.Tracked());
        Assert.Equal(1, h.DirectoryTree.WatchFailureCount);
        await h.AssertExactAsync();
    }

    private static async Task Until(Func<bool> condition)
    {
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        while (!condition())
        {
            await Task.Delay(5, cts.Token);
        }
    }

    private sealed record Seen(string Path, ulong Inode, ulong DescriptorInode, string DescriptorPath);

    private sealed class RecordingHandler : IDirectoryTreeHandler
    {
        private int _refusals;

        public ConcurrentQueue<Seen> Added { get; } = new();

        public ConcurrentQueue<Seen> Removed { get; } = new();

        /// <summary>A directory name the handler cannot protect now.</summary>
        public volatile string? Refuse;

        public int Refusals => Volatile.Read(ref _refusals);

        public void DirectoryAdded(TrackedDirectory directory)
        {
            if (Path.GetFileName(directory.GetPath()) == Refuse)
            {
                Interlocked.Increment(ref _refusals);
                throw new IOException("cannot protect it now");
            }

            Added.Enqueue(Describe(directory));
        }

        public void DirectoryRemoved(TrackedDirectory directory) => Removed.Enqueue(Describe(directory));

        public void FileChanged(TrackedFile file) => file.File.Dispose();

        private static Seen Describe(TrackedDirectory d)
        {
            var fd = d.Descriptor.DangerousGetHandle();
            var descriptorPath = new FileInfo($"/proc/self/fd/{fd}").LinkTarget!;
            var inode = ulong.Parse(File.ReadAllLines($"/proc/self/fdinfo/{fd}").Single(l => l.StartsWith("ino:", StringComparison.Ordinal))[4..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            return new Seen(d.GetPath(), d.Inode, inode, descriptorPath);
        }
    }
}
