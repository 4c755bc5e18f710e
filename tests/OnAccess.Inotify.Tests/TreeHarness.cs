using System.Collections.Concurrent;
using OnAccess.Tests;

namespace OnAccess.Inotify.Tests;

/// <summary>A started <see cref="DirectoryTree"/> on a temp tree, with its notifications collected in order.</summary>
internal sealed class TreeHarness : IAsyncDisposable
{
    private readonly ConcurrentQueue<DirectoryTreeEvent> _seen = new();
    private readonly SemaphoreSlim _arrived = new(0);
    private readonly Task _reader;
    private int _sentinels;

    private TreeHarness(KernelTestSupport.TempTree tree, DirectoryTree directoryTree, DirectoryTreeOptions options)
    {
        Tree = tree;
        DirectoryTree = directoryTree;
        Options = options;
        _reader = Task.Run(async () =>
        {
            await foreach (var e in directoryTree.Events.ReadAllAsync())
            {
                _seen.Enqueue(e);
                _arrived.Release();
            }
        });
    }

    public KernelTestSupport.TempTree Tree { get; }

    public DirectoryTree DirectoryTree { get; }

    public DirectoryTreeOptions Options { get; }

    public string Root => Tree.Combine("root");

    public IReadOnlyList<DirectoryTreeEvent> Seen => [.. _seen];

    /// <summary>Makes a temp tree with a "root" directory, lets <paramref name="prepare"/> fill it, and starts a tracker on it.</summary>
    public static TreeHarness Start(Action<string>? prepare = null, bool reportFiles = false, string[]? excludes = null, Action<DirectoryTreeOptions>? configure = null)
    {
        var tree = KernelTestSupport.CreateTempTree("onaccess-tree-");
        var root = tree.Combine("root");
        Directory.CreateDirectory(root);
        prepare?.Invoke(root);
        return Start(tree, root, reportFiles, excludes, configure);
    }

    /// <summary>Like <see cref="Start(Action{string}?, bool, string[]?, Action{DirectoryTreeOptions}?)"/>, with an asynchronous preparation that gets the temp tree (to mount on it).</summary>
    public static async Task<TreeHarness> StartAsync(Func<KernelTestSupport.TempTree, string, Task> prepare)
    {
        var tree = KernelTestSupport.CreateTempTree("onaccess-tree-");
        var root = tree.Combine("root");
        Directory.CreateDirectory(root);
        await prepare(tree, root);
        return Start(tree, root, reportFiles: false, excludes: null, configure: null);
    }

    private static TreeHarness Start(KernelTestSupport.TempTree tree, string root, bool reportFiles, string[]? excludes, Action<DirectoryTreeOptions>? configure)
    {
        var options = new DirectoryTreeOptions
        {
            Roots = [new DirectoryTreeRoot(root)],
            ExcludePaths = [.. (excludes ?? []).Select(e => Path.Combine(root, e))],
            ReportFiles = reportFiles,
        };
        configure?.Invoke(options);
        var directoryTree = new DirectoryTree(options);
        directoryTree.Start();
        return new TreeHarness(tree, directoryTree, options);
    }

    public string P(string relative) => relative.Length == 0 ? Root : Path.Combine(Root, relative);

    /// <summary>Waits for a notification; returns it.</summary>
    public async Task<DirectoryTreeEvent> WaitForAsync(DirectoryTreeEventKind kind, string path)
    {
        using var cts = new CancellationTokenSource(KernelTestSupport.Timeout);
        while (true)
        {
            var match = _seen.FirstOrDefault(e => e.Kind == kind && e.Path == path);
            if (match is not null)
            {
                return match;
            }

            try
            {
                await _arrived.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"No {kind} for {path}; seen: {string.Join("; ", _seen.TakeLast(30).Select(e => $"{e.Kind} {e.Path}"))}");
            }
        }
    }

    /// <summary>
    /// Waits until the tracker has processed everything that happened so far: events are handled in order, so once
    /// a fresh sentinel directory's creation and removal have been reported, every earlier event has been too.
    /// </summary>
    public async Task QuiesceAsync()
    {
        var sentinel = Path.Combine(Root, $".sentinel-{Interlocked.Increment(ref _sentinels)}");
        Directory.CreateDirectory(sentinel);
        await WaitForAsync(DirectoryTreeEventKind.DirectoryAdded, sentinel);
        Directory.Delete(sentinel);
        await WaitForAsync(DirectoryTreeEventKind.DirectoryRemoved, sentinel);
    }

    /// <summary>Every directory a fresh walk finds under the roots, without following links, minus the exclusions.</summary>
    public SortedSet<string> FreshWalk()
    {
        var result = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var root in Options.Roots)
        {
            if (!Directory.Exists(root.Path))
            {
                continue;
            }

            var stack = new Stack<string>([root.Path]);
            while (stack.Count > 0)
            {
                var d = stack.Pop();
                if (Options.ExcludePaths.Any(e => Under(d, e) && !Under(root.Path, e)))
                {
                    continue;
                }

                result.Add(d);
                if (!root.Recursive)
                {
                    continue;
                }

                foreach (var child in new DirectoryInfo(d).EnumerateDirectories("*", new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true }))
                {
                    if (child.LinkTarget is null)
                    {
                        stack.Push(child.FullName);
                    }
                }
            }
        }

        return result;
    }

    private static bool Under(string path, string ancestor) => path == ancestor || path.StartsWith(ancestor + "/", StringComparison.Ordinal);

    public SortedSet<string> Tracked() => new(DirectoryTree.GetDirectories(), StringComparer.Ordinal);

    /// <summary>The watches the kernel holds for this tracker's inotify instance (from /proc/self/fdinfo).</summary>
    public HashSet<int> KernelWatches() =>
        [.. File.ReadLines($"/proc/self/fdinfo/{DirectoryTree.DescriptorNumber}")
            .Where(l => l.StartsWith("inotify wd:", StringComparison.Ordinal))
            .Select(l => int.Parse(l["inotify wd:".Length..].Split(' ')[0], System.Globalization.NumberStyles.HexNumber))];

    /// <summary>The tracked set equals a fresh walk, and the kernel holds exactly the tracker's watches.</summary>
    public async Task AssertExactAsync()
    {
        await QuiesceAsync();
        var fresh = FreshWalk();
        var tracked = Tracked();
        Assert.True(fresh.SetEquals(tracked), $"missed: [{string.Join(", ", fresh.Except(tracked))}]; extra: [{string.Join(", ", tracked.Except(fresh))}]; unprotected now {DirectoryTree.UnprotectedCount}, watch failures {DirectoryTree.WatchFailureCount}, overflows {DirectoryTree.OverflowCount}; last notices: {string.Join("; ", Seen.TakeLast(8).Select(e => $"{e.Kind} {e.Path} {e.Reason}"))}");
        Assert.Equal(DirectoryTree.DirectoryCount, Tracked().Count);
        var mine = DirectoryTree.GetWatchDescriptors();
        var kernel = KernelWatches();
        Assert.True(mine.SetEquals(kernel), $"kernel-only watches: [{string.Join(", ", kernel.Except(mine))}]; tracker-only: [{string.Join(", ", mine.Except(kernel))}]");
    }

    public async ValueTask DisposeAsync()
    {
        await DirectoryTree.DisposeAsync();
        await _reader.WaitAsync(KernelTestSupport.Timeout);
        Tree.Dispose();
        _arrived.Dispose();
    }
}
