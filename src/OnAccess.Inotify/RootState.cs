using System.Text;

namespace OnAccess.Inotify;

/// <summary>A configured root: its path as given (roots are the administrator's, not an attacker's, to name).</summary>
internal sealed class RootState(string path, bool recursive)
{
    public string Path { get; } = path;

    public byte[] PathBytes { get; } = Encoding.UTF8.GetBytes(path);

    public byte[] NameBytes { get; } = Encoding.UTF8.GetBytes(System.IO.Path.GetFileName(path));

    public bool Recursive { get; } = recursive;

    public TreeNode? Node { get; set; }

    public int ParentWd { get; set; } = -1;
}
