using System.Diagnostics;
using System.Globalization;
using OnAccess.Inotify;

namespace OnAccess.Benchmarks;

/// <summary>
/// Set-up of a recursive watch on a generated tree: DirectoryTree.Start against Debian's `inotifywait -r`, timed
/// side by side (alternating, several rounds) in one run, plus DirectoryTree's retained managed memory per directory.
/// Usage: tree-setup [--dirs N] [--rounds R] [--path DIR]
/// </summary>
internal static class TreeSetupBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var dirs = BenchArgs.Option(args, "--dirs", 100_000);
        var rounds = BenchArgs.Option(args, "--rounds", 5);
        var path = args.SkipWhile(a => a != "--path").Skip(1).FirstOrDefault() ?? Path.Combine(Path.GetTempPath(), $"onaccess-tree-bench-{dirs}");
        var created = Generate(path, dirs);
        Console.WriteLine($"tree: {path} ({created} directories)");

        var ours = new List<double>();
        var theirs = new List<double>();
        var bytesPerDirectory = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            theirs.Add(await InotifywaitAsync(path));
            var (ms, bytes, count) = await DirectoryTreeAsync(path);
            ours.Add(ms);
            bytesPerDirectory.Add(bytes / (double)count);
            Console.WriteLine($"round {round + 1}: inotifywait -r {theirs[^1]:F0} ms, DirectoryTree {ms:F0} ms ({count} watches, {bytes / (double)count:F0} B/dir)");
        }

        var ratio = BenchArgs.Median(ours) / BenchArgs.Median(theirs);
        Console.WriteLine();
        Console.WriteLine("| tracker | median set-up (ms) | ratio | managed bytes per directory |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine($"| inotifywait -r (inotify-tools) | {BenchArgs.Median(theirs):F0} | 1.00 | n/a |");
        Console.WriteLine($"| OnAccess DirectoryTree | {BenchArgs.Median(ours):F0} | {ratio:F2} | {BenchArgs.Median(bytesPerDirectory):F0} |");
        return 0;
    }

    private static async Task<(double Ms, long Bytes, int Count)> DirectoryTreeAsync(string path)
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var stopwatch = Stopwatch.StartNew();
        var tree = new DirectoryTree(new DirectoryTreeOptions { Roots = [new DirectoryTreeRoot(path)] });
        tree.Start();
        stopwatch.Stop();
        var after = GC.GetTotalMemory(forceFullCollection: true);
        var count = tree.DirectoryCount;
        GC.KeepAlive(tree);
        await tree.DisposeAsync();
        return (stopwatch.Elapsed.TotalMilliseconds, after - before, count);
    }

    private static async Task<double> InotifywaitAsync(string path)
    {
        var start = new ProcessStartInfo("inotifywait") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-r", "-m", "-e", "create,delete,move", path })
        {
            start.ArgumentList.Add(a);
        }

        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("inotifywait is missing: apt-get install inotify-tools");
        try
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                if (line.Contains("Watches established", StringComparison.Ordinal))
                {
                    return stopwatch.Elapsed.TotalMilliseconds;
                }
            }

            throw new InvalidOperationException("inotifywait exited before establishing its watches");
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    /// <summary>A tree of <paramref name="count"/> directories, fan-out 10, made once and reused.</summary>
    private static int Generate(string root, int count)
    {
        var marker = Path.Combine(root, ".complete");
        if (File.Exists(marker))
        {
            return int.Parse(File.ReadAllText(marker), CultureInfo.InvariantCulture);
        }

        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }

        Directory.CreateDirectory(root);
        var made = 1;
        var queue = new Queue<string>([root]);
        while (made < count)
        {
            var parent = queue.Dequeue();
            for (var i = 0; i < 10 && made < count; i++, made++)
            {
                var child = Path.Combine(parent, "d" + i.ToString(CultureInfo.InvariantCulture));
                Directory.CreateDirectory(child);
                queue.Enqueue(child);
            }
        }

        File.WriteAllText(marker, made.ToString(CultureInfo.InvariantCulture));
        return made;
    }
}
