using OnAccess.Kernel;

namespace OnAccess.Inotify;

/// <summary>
/// One tracked directory: its name (bytes, as the kernel gives it) within its parent, its parent, its watch, and what
/// identifies its inode wherever it moves (device and inode, and a file handle where the filesystem has them).
/// </summary>
/// <remarks>
/// Children are kept compactly: none, one node, an array of up to 16 (with empty slots), or a dictionary beyond that.
/// The tree never holds a cycle: a node is only ever linked under a node that is not in its own subtree.
/// </remarks>
internal sealed class TreeNode(byte[] name, TreeNode? parent, int wd, InodeId id, byte[]? handle)
{
    private const int ArrayLimit = 16;

    private object? _children;

    public byte[] Name { get; set; } = name;

    public TreeNode? Parent { get; set; } = parent;

    public int Wd { get; } = wd;

    public InodeId Id { get; } = id;

    /// <summary>The inode's file handle (type, then bytes), or null where the filesystem has none.</summary>
    public byte[]? Handle { get; } = handle;

    public int Seen { get; set; } = -1;

    /// <summary>Set on root nodes only; every other node belongs to its parent's root.</summary>
    public RootState? Root { get; set; }

    public RootState RootState
    {
        get
        {
            for (var n = this; n is not null; n = n.Parent)
            {
                if (n.Root is { } r)
                {
                    return r;
                }
            }

            throw new InvalidOperationException("A tracked directory has no root.");
        }
    }

    public IEnumerable<TreeNode> Children => _children switch
    {
        null => [],
        TreeNode single => [single],
        TreeNode[] few => few.Where(c => c is not null),
        Dictionary<byte[], TreeNode> many => many.Values,
        _ => [],
    };

    public TreeNode? FindChild(ReadOnlySpan<byte> name)
    {
        switch (_children)
        {
            case TreeNode single when single.Name.AsSpan().SequenceEqual(name):
                return single;
            case TreeNode[] few:
                foreach (var c in few)
                {
                    if (c is not null && c.Name.AsSpan().SequenceEqual(name))
                    {
                        return c;
                    }
                }

                return null;
            case Dictionary<byte[], TreeNode> many:
                return many.GetValueOrDefault(name.ToArray());
            default:
                return null;
        }
    }

    public void AddChild(TreeNode child)
    {
        switch (_children)
        {
            case null:
                _children = child;
                break;
            case TreeNode single:
                _children = new TreeNode[] { single, child, null!, null! };
                break;
            case TreeNode[] few:
                var free = Array.IndexOf(few, null);
                if (free >= 0)
                {
                    few[free] = child;
                }
                else if (few.Length < ArrayLimit)
                {
                    var grown = new TreeNode[few.Length * 2];
                    few.CopyTo(grown, 0);
                    grown[few.Length] = child;
                    _children = grown;
                }
                else
                {
                    var many = new Dictionary<byte[], TreeNode>(few.Length * 2, ByteNameComparer.Instance);
                    foreach (var c in few)
                    {
                        many[c.Name] = c;
                    }

                    many[child.Name] = child;
                    _children = many;
                }

                break;
            case Dictionary<byte[], TreeNode> many:
                many[child.Name] = child;
                break;
        }
    }

    public void RemoveChild(TreeNode child)
    {
        switch (_children)
        {
            case TreeNode single when single == child:
                _children = null;
                break;
            case TreeNode[] few:
                var i = Array.IndexOf(few, child);
                if (i >= 0)
                {
                    few[i] = null!;
                }

                break;
            case Dictionary<byte[], TreeNode> many:
                if (many.TryGetValue(child.Name, out var found) && found == child)
                {
                    many.Remove(child.Name);
                }

                break;
        }
    }

    public bool IsDescendantOf(TreeNode ancestor)
    {
        for (var n = Parent; n is not null; n = n.Parent)
        {
            if (n == ancestor)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The node and everything below it, children after their parent.</summary>
    public List<TreeNode> SelfAndDescendants()
    {
        var result = new List<TreeNode> { this };
        for (var i = 0; i < result.Count; i++)
        {
            result.AddRange(result[i].Children);
        }

        return result;
    }

    /// <summary>The path the tree knows this directory by: its root's path and the names down to it, as bytes.</summary>
    public byte[] GetPath()
    {
        var depth = 0;
        var length = 0;
        var n = this;
        for (; n.Parent is not null; n = n.Parent)
        {
            depth++;
            length += 1 + n.Name.Length;
        }

        var rootPath = n.Root?.PathBytes ?? n.Name;
        if (rootPath is [(byte)'/'])
        {
            rootPath = [];
        }

        if (depth == 0)
        {
            return n.Root?.PathBytes ?? n.Name;
        }

        var path = new byte[rootPath.Length + length];
        var at = path.Length;
        for (var m = this; m.Parent is not null; m = m.Parent)
        {
            at -= m.Name.Length;
            m.Name.CopyTo(path, at);
            path[--at] = (byte)'/';
        }

        rootPath.CopyTo(path, 0);
        return path;
    }
}

/// <summary>Names compared byte for byte (a directory name need not be UTF-8).</summary>
internal sealed class ByteNameComparer : IEqualityComparer<byte[]>
{
    public static readonly ByteNameComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj)
    {
        var hash = default(HashCode);
        hash.AddBytes(obj);
        return hash.ToHashCode();
    }
}
