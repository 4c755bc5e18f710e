using System.Diagnostics;
using System.Runtime.InteropServices;

namespace OnAccess.Tests;

/// <summary>Shared helpers for tests that use the real kernel: root checks, temp trees, tmpfs, child processes.</summary>
internal static partial class KernelTestSupport
{
    /// <summary>How long any single wait in a kernel test may take before the test fails.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public static bool IsRoot => GetEuid() == 0;

    public static void RequireRoot() =>
        Assert.SkipUnless(IsRoot, "fanotify needs CAP_SYS_ADMIN: this test runs only as root (CI runs as root, so there it never skips).");

    /// <summary>A directory the test owns; deleted (and unmounted, if it was mounted) on dispose.</summary>
    public static TempTree CreateTempTree(string prefix = "onaccess-test-") => new(Directory.CreateTempSubdirectory(prefix).FullName);

    /// <summary>Runs a child process and returns its exit code, stdout and stderr; kills it (by pid) after the timeout.</summary>
    public static async Task<ChildResult> RunAsync(string fileName, params string[] args) => await RunAsync(fileName, args, Timeout).ConfigureAwait(false);

    public static async Task<ChildResult> RunAsync(string fileName, string[] args, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + fileName);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw new TimeoutException($"{fileName} {string.Join(' ', args)} (pid {process.Id}) did not finish within {timeout.TotalSeconds} s and was killed.");
        }

        return new ChildResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false), process.Id);
    }

    /// <summary>Starts a child process without waiting for it.</summary>
    public static Process Start(string fileName, params string[] args) => StartIn(null, fileName, args);

    /// <summary>Starts a child in <paramref name="workingDirectory"/> (null: this process's).</summary>
    public static Process StartIn(string? workingDirectory, string fileName, params string[] args)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workingDirectory ?? string.Empty };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("could not start " + fileName);
    }

    /// <summary>
    /// The /proc/PID/fdinfo lines of every descriptor of <paramref name="pid"/> whose link reads
    /// <paramref name="target"/> (for example <c>anon_inode:inotify</c>); descriptors closed meanwhile are skipped.
    /// </summary>
    public static List<string> FdInfoLines(int pid, string target)
    {
        var lines = new List<string>();
        foreach (var fd in Directory.GetFiles($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget == target)
                {
                    lines.AddRange(File.ReadAllLines($"/proc/{pid}/fdinfo/{Path.GetFileName(fd)}"));
                }
            }
            catch (IOException)
            {
                // closed meanwhile
            }
        }

        return lines;
    }

    /// <summary>
    /// How many children of <paramref name="parentPid"/> wait in the kernel for a fanotify verdict now (their
    /// <c>/proc/PID/wchan</c> reads <c>fanotify_handle_event</c>): how a test knows every open it started is held.
    /// </summary>
    public static int HeldOpensOfChildrenOf(int parentPid)
    {
        var held = 0;
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(System.IO.Path.GetFileName(dir), out _))
            {
                continue;
            }

            try
            {
                var stat = System.IO.File.ReadAllText(dir + "/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) == parentPid
                    && System.IO.File.ReadAllText(dir + "/wchan") == "fanotify_handle_event")
                {
                    held++;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // gone meanwhile
            }
        }

        return held;
    }

    /// <summary>Waits (at most <see cref="Timeout"/>) until <paramref name="count"/> children of <paramref name="parentPid"/> wait for a verdict.</summary>
    public static async Task WaitForHeldOpensAsync(int parentPid, int count)
    {
        using var cts = new CancellationTokenSource(Timeout);
        int held;
        while ((held = HeldOpensOfChildrenOf(parentPid)) < count)
        {
            if (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"{held} of {count} opens held after {Timeout.TotalSeconds} s");
            }

            await Task.Delay(10, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>How many inotify watches processes of root hold now, system-wide (the per-user count the limit applies to).</summary>
    public static int RootInotifyWatches()
    {
        var count = 0;
        foreach (var dir in Directory.GetDirectories("/proc").Where(d => int.TryParse(System.IO.Path.GetFileName(d), out _)))
        {
            try
            {
                if (!System.IO.File.ReadAllLines(System.IO.Path.Combine(dir, "status")).Any(l => l.StartsWith("Uid:\t0\t", StringComparison.Ordinal)))
                {
                    continue;
                }

                var pid = int.Parse(System.IO.Path.GetFileName(dir), System.Globalization.CultureInfo.InvariantCulture);
                count += FdInfoLines(pid, "anon_inode:inotify").Count(l => l.StartsWith("inotify wd:", StringComparison.Ordinal));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // exited meanwhile
            }
        }

        return count;
    }

    /// <summary>
    /// Sets a sysctl (machine-wide: test projects run one after another) for the length of a test and puts the old
    /// value back on dispose.
    /// </summary>
    public static IDisposable SetSysctl(string path, string value)
    {
        var old = System.IO.File.ReadAllText(path).Trim();
        System.IO.File.WriteAllText(path, value);
        return new SysctlRestore(path, old);
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Umount2(string target, int flags);

    internal sealed record ChildResult(int ExitCode, string StdOut, string StdErr, int Pid);

    private sealed class SysctlRestore(string path, string value) : IDisposable
    {
        public void Dispose() => System.IO.File.WriteAllText(path, value);
    }

    internal sealed class TempTree : IDisposable
    {
        private readonly List<string> _mounts = [];

        public TempTree(string path) => Path = path;

        public string Path { get; }

        public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

        public string File(string relative, string content)
        {
            var full = Combine(relative);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
            System.IO.File.WriteAllText(full, content);
            return full;
        }

        /// <summary>Mounts a private tmpfs on a new subdirectory (root only); unmounted on dispose.</summary>
        public async Task<string> MountTmpfsAsync(string relative, string size = "16m")
        {
            var target = Combine(relative);
            Directory.CreateDirectory(target);
            var result = await RunAsync("/bin/mount", "-t", "tmpfs", "-o", "size=" + size, "onaccess-test", target).ConfigureAwait(false);
            Assert.True(result.ExitCode == 0, "mount -t tmpfs failed: " + result.StdErr);
            _mounts.Add(target);
            return target;
        }

        /// <summary>
        /// Makes a filesystem on a fresh 32 MiB loop image with <paramref name="mkfs"/> (and its arguments; the image path
        /// is appended) and mounts it on a new subdirectory (root only); unmounted on dispose.
        /// </summary>
        public async Task<string> MountImageAsync(string relative, params string[] mkfs)
        {
            var image = Combine(relative + ".img");
            await using (var stream = new FileStream(image, FileMode.CreateNew))
            {
                stream.SetLength(32 * 1024 * 1024);
            }

            var made = await RunAsync(mkfs[0], [.. mkfs[1..], image]).ConfigureAwait(false);
            Assert.True(made.ExitCode == 0, $"{mkfs[0]} failed: {made.StdErr}");
            var target = Combine(relative);
            Directory.CreateDirectory(target);
            var result = await RunAsync("/bin/mount", "-o", "loop", image, target).ConfigureAwait(false);
            Assert.True(result.ExitCode == 0, "mount -o loop failed: " + result.StdErr);
            _mounts.Add(target);
            return target;
        }

        /// <summary>Bind-mounts <paramref name="source"/> on a new subdirectory (root only); unmounted on dispose.</summary>
        public async Task<string> BindMountAsync(string source, string relative)
        {
            var target = Combine(relative);
            Directory.CreateDirectory(target);
            var result = await RunAsync("/bin/mount", "--bind", source, target).ConfigureAwait(false);
            Assert.True(result.ExitCode == 0, "mount --bind failed: " + result.StdErr);
            _mounts.Add(target);
            return target;
        }

        public void Dispose()
        {
            foreach (var m in Enumerable.Reverse(_mounts))
            {
                Umount2(m, 2 /* MNT_DETACH */);
            }

            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                // Deeper than PATH_MAX, or a name .NET cannot hold: rm works relative to each directory.
                RunAsync("/bin/rm", "-rf", "--one-file-system", Path).GetAwaiter().GetResult();
            }
        }
    }
}
