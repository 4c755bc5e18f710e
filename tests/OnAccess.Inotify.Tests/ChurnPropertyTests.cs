namespace OnAccess.Inotify.Tests;

/// <summary>
/// Two workers each make 3,000 random creations, renames, deletions and moves in and out of directories; once the
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
        var workers = Enumerable.Range(0, 2).Select(w => Task.Run(() => Churn(h.Root, outside, new Random((seed * 31) + w), OperationsPerWorker))).ToArray();
        var done = await Task.WhenAll(workers);

        // Every kind of operation happened (the two workers race, so some fail), so the comparison below is not vacuous.
        var succeeded = new int[Kinds];
        foreach (var worker in done)
        {
            for (var k = 0; k < Kinds; k++)
            {
                succeeded[k] += worker[k];
            }
        }

        Assert.All(succeeded, n => Assert.True(n > 0, $"an operation never succeeded: {string.Join(", ", succeeded)} (create, rename, delete, move out, move in)"));
        await h.AssertExactAsync();
    }

    private const int OperationsPerWorker = 3000;
    private const int Kinds = 5;

    /// <summary>Returns how many of each kind succeeded: create, rename, delete, move out, move in.</summary>
    private static int[] Churn(string root, string outside, Random random, int operations)
    {
        var succeeded = new int[Kinds];
        var unique = 0;
        for (var i = 0; i < operations; i++)
        {
            var path = RandomPath(root, random);
            var kind = random.Next(6) switch { 0 or 1 => 0, 2 => 1, 3 => 2, 4 => 3, _ => 4 };
            try
            {
                switch (kind)
                {
                    case 0:
                        Directory.CreateDirectory(path);
                        break;
                    case 1:
                        var target = RandomPath(root, random);
                        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                        Directory.Move(path, target);
                        break;
                    case 2:
                        Directory.Delete(path, recursive: true);
                        break;
                    case 3:
                        Directory.Move(path, Path.Combine(outside, $"{Environment.CurrentManagedThreadId}-{unique++}"));
                        break;
                    default:
                        var incoming = Path.Combine(outside, $"in-{Environment.CurrentManagedThreadId}-{unique++}");
                        Directory.CreateDirectory(Path.Combine(incoming, "x", "y"));
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        Directory.Move(incoming, path);
                        break;
                }

                succeeded[kind]++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Races with the other worker (gone, exists, moved into itself): part of the churn.
            }
        }

        return succeeded;
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
