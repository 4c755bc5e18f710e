using System.Text;
using Microsoft.Extensions.Logging;
using OnAccess.Kernel;

namespace OnAccess.Inotify;

/// <summary>
/// What the parts of a <see cref="DirectoryTree"/> share: the nodes by watch, the roots, the exclusions, the notices
/// waiting to be published, the inotify descriptor, and the parts themselves. Used under the tree's lock only.
/// </summary>
internal sealed class TreeContext
{
    public TreeContext(DirectoryTreeOptions options, ILogger logger, uint mask)
    {
        Options = options;
        Handler = options.Handler;
        Logger = logger;
        Mask = mask;
        Excludes = [.. options.ExcludePaths.Select(p => Encoding.UTF8.GetBytes(TrimSlash(p)))];
        Roots = [.. options.Roots.Select(r => new RootState(TrimSlash(r.Path), r.Recursive))];
        Opener = new DirectoryOpener();
        Walker = new TreeWalker(this);
        Retries = new TreeRetries(this);
        Removal = new TreeRemoval(this);
        Changes = new TreeChanges(this);
        Recovery = new TreeRecovery(this);
    }

    public DirectoryTreeOptions Options { get; }

    public IDirectoryTreeHandler? Handler { get; }

    public ILogger Logger { get; }

    public uint Mask { get; }

    public byte[][] Excludes { get; }

    public List<RootState> Roots { get; }

    /// <summary>Every tracked directory by its watch descriptor.</summary>
    public Dictionary<int, TreeNode> ByWd { get; } = [];

    /// <summary>Watches on the parents of lost roots, waiting for the root to come back.</summary>
    public Dictionary<int, List<RootState>> RootParents { get; } = [];

    /// <summary>Notices made under the lock, published in order after it is let go.</summary>
    public List<DirectoryTreeEvent> Outbox { get; } = [];

    public SafeDescriptorHandle? Fd { get; set; }

    public DirectoryOpener Opener { get; }

    public TreeWalker Walker { get; }

    public TreeRetries Retries { get; }

    public TreeRemoval Removal { get; }

    public TreeChanges Changes { get; }

    public TreeRecovery Recovery { get; }

    /// <summary>The walk generation of the last resynchronisation.</summary>
    public int Generation;

    public long Overflows;

    public long WatchFailures;

    /// <summary>The tree fell behind in a way a batch cannot follow: it is rebuilt from the roots at the end of the batch.</summary>
    public bool RebuildNeeded;

    public static string DisplayPath(byte[] path) => Text.DisplayText.Escape(path);

    public void Emit(DirectoryTreeEventKind kind, byte[] path, byte[]? oldPath = null) =>
        Outbox.Add(new DirectoryTreeEvent(kind, Encoding.UTF8.GetString(path), oldPath is null ? null : Encoding.UTF8.GetString(oldPath)));

    public void Emit(DirectoryTreeEventKind kind, string path, string? reason = null) =>
        Outbox.Add(new DirectoryTreeEvent(kind, path, Reason: reason));

    /// <summary>
    /// Whether an exclusion covers <paramref name="path"/>. An exclusion that also covers the root does not apply to
    /// it: such a root is an include nested below an exclusion on purpose.
    /// </summary>
    public bool IsExcluded(ReadOnlySpan<byte> path, RootState root)
    {
        foreach (var e in Excludes)
        {
            if (IsSameOrUnder(path, e) && !IsSameOrUnder(root.PathBytes, e))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether the node is the one tracked under its watch (a node taken out, or replaced, is not).</summary>
    public bool IsTracked(TreeNode node) => ByWd.TryGetValue(node.Wd, out var current) && current == node;

    /// <summary>Whether <paramref name="path"/> is <paramref name="ancestor"/> or lies below it, component by component.</summary>
    public static bool IsSameOrUnder(ReadOnlySpan<byte> path, ReadOnlySpan<byte> ancestor) =>
        ancestor.SequenceEqual("/"u8)
        || (path.StartsWith(ancestor) && (path.Length == ancestor.Length || path[ancestor.Length] == (byte)'/'));

    /// <summary>A directory's path and an entry's name, joined.</summary>
    public static byte[] Combine(byte[] directory, ReadOnlySpan<byte> name)
    {
        var slash = directory is [(byte)'/'] ? 0 : 1;
        var path = new byte[directory.Length + slash + name.Length];
        directory.CopyTo(path, 0);
        if (slash == 1)
        {
            path[directory.Length] = (byte)'/';
        }

        name.CopyTo(path.AsSpan(directory.Length + slash));
        return path;
    }

    /// <summary>Whether an open failed because the entry is gone, not a directory, or a link: nothing to protect there.</summary>
    public static bool IsBenignOpenError(int errno) => errno is Interop.Errno.ENOENT or Interop.Errno.ENOTDIR or Interop.Errno.ELOOP;

    public static string TrimSlash(string path) => path.Length > 1 ? path.TrimEnd('/') : path;
}
