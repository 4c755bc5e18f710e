namespace OnAccess.Inotify.Tests;

/// <summary>
/// Two workers create, rename, delete and move directories in and out at random for a few seconds; once the
/// tracker has caught up, what it tracks equals a fresh walk minus the exclusions, and it holds exactly one watch per
/// tracked directory (plus its lost-root watches): nothing missed, nothing leaked.
/// </summary>
public sealed class ChurnPropertyTests
{
    private static readonly string[] Names = ["a", "b", "c", "ex", "d e"];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task After_random_churn_the_tree_equals_a_fresh_walk_and_no_watch_leaks(int seed)
    {
        await using var h = TreeHarness.Start(r => Directory.CreateDirectory(Path.Combine(r, "a", "b")), excludes: ["ex"]);
        var outside = h.Tree.Combine("outside");
        Directory.CreateDirectory(outside);
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(3);
        var workers = Enumerable.Range(0, 2).Select(w => Task.Run(() => Churn(h.Root, outside, new Random((seed * 31) + w), until))).ToArray();
        var operations = await Task.WhenAll(workers);
        Assert.True(operations.Sum() > 100, $"the workers did only {operations.Sum()} operations");

        await h.AssertExactAsync();
        Assert.True(h.DirectoryTree.DirectoryCount >= 1);
    }

    private static int Churn(string root, string outside, Random random, DateTime until)
    {
        var count = 0;
        var unique = 0;
        while (DateTime.UtcNow < until)
        {
            var path = RandomPath(root, random);
            try
            {
                switch (random.Next(6))
                {
                    case 0 or 1:
                        Directory.CreateDirectory(path);
                        break;
                    case 2:
                        var target = RandomPath(root, random);
                        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                        Directory.Move(path, target);
                        break;
                    case 3:
                        Directory.Delete(path, recursive: true);
                        break;
                    case 4:
                        Directory.Move(path, Path.Combine(outside, $"{Environment.CurrentManagedThreadId}-{unique++}"));
                        break;
                    default:
                        var incoming = Path.Combine(outside, $"in-{Environment.CurrentManagedThreadId}-{unique++}");
                        Directory.CreateDirectory(Path.Combine(incoming, "x", "y"));
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        Directory.Move(incoming, path);
                        break;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Races with the other worker (gone, exists, moved into itself): part of the churn.
            }

            count++;
        }

        return count;
    }

    private static string RandomPath(string root, Random random)
    {
        var depth = random.Next(1, 5);
        var parts = new string[depth];
        for (var i = 0; i < depth; i++)
        {
            parts[i] = Names[random.Next(Names.Length)];
        }

        return Path.Combine([root, .. parts]);
    }
}
