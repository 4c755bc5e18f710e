using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using OnAccess.Tests;

[assembly: CollectionBehavior(CollectionBehavior.CollectionPerAssembly)]

namespace OnAccess.Adversity.Tests;

/// <summary>
/// The attacker program (attacker.c), built once per run with gcc into the test output directory, and what its
/// lines mean. It runs as a separate process, as an attacker's would: the monitor allows its own process at once.
/// </summary>
internal static class Attacker
{
    private static readonly Lazy<string> Binary = new(Build);

    public static string Path => Binary.Value;

    public static Task<KernelTestSupport.ChildResult> RunAsync(params string[] args) => RunAsync(KernelTestSupport.Timeout, args);

    public static async Task<KernelTestSupport.ChildResult> RunAsync(TimeSpan timeout, params string[] args)
    {
        var result = await KernelTestSupport.RunAsync(Path, args, timeout);
        Assert.True(result.ExitCode == 0, $"attacker {string.Join(' ', args)} failed ({result.ExitCode}): {result.StdOut} {result.StdErr}");
        return result;
    }

    /// <summary>Opens each path in one process; returns path → outcome.</summary>
    public static async Task<Dictionary<string, OpenOutcome>> OpenAsync(IEnumerable<string> paths)
    {
        var list = paths.ToList();
        var outcomes = new Dictionary<string, OpenOutcome>(StringComparer.Ordinal);
        foreach (var chunk in list.Chunk(200))
        {
            var result = await RunAsync(["open", .. chunk]);
            foreach (var line in result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var parts = line.Split(' ', 3);
                outcomes[parts[2]] = new OpenOutcome(parts[0], parts[1] == "EICAR");
            }
        }

        return outcomes;
    }

    public static async Task<OpenOutcome> OpenAsync(string path) => (await OpenAsync([path]))[path];

    private static string Build()
    {
        var source = System.IO.Path.Combine(AppContext.BaseDirectory, "attacker.c");
        var binary = System.IO.Path.Combine(AppContext.BaseDirectory, "attacker");
        var result = KernelTestSupport.RunAsync("gcc", ["-O2", "-pthread", "-o", binary, source], TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
        Assert.True(result.ExitCode == 0, "gcc attacker.c failed: " + result.StdErr);
        return binary;
    }
}

/// <summary>What one open by the attacker came to: OK, DENIED (EPERM) or ERR&lt;errno&gt;, and whether EICAR was read.</summary>
internal sealed record OpenOutcome(string Status, bool ReadEicar)
{
    public bool Denied => Status == "DENIED";

    public bool Opened => Status == "OK";
}

/// <summary>Sample contents: clean and infected files of a given size, and the signature lines that match them.</summary>
internal static class Samples
{
    public static readonly byte[] Eicar = Encoding.ASCII.GetBytes(OnAccess.Core.Tests.EicarScanner.Eicar);

    /// <summary>EICAR followed by line breaks up to <paramref name="size"/> bytes.</summary>
    public static byte[] Infected(int size)
    {
        var bytes = new byte[size];
        Array.Fill(bytes, (byte)'\n');
        Eicar.CopyTo(bytes, 0);
        return bytes;
    }

    public static byte[] Clean(int size)
    {
        var bytes = new byte[size];
        Array.Fill(bytes, (byte)'a');
        return bytes;
    }

#pragma warning disable CA5351 // ClamAV's .hdb format is MD5
    public static string HdbLine(byte[] content, string name) => $"{Convert.ToHexStringLower(MD5.HashData(content))}:{content.Length}:{name}";
#pragma warning restore CA5351
}

/// <summary>How long the long-running attacks last: the CI default, or ONACCESS_ADVERSITY_SECONDS for a soak (scripts/adversity.sh --seconds N).</summary>
internal static class Soak
{
    public static int Seconds(int ciDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("ONACCESS_ADVERSITY_SECONDS"), NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : ciDefault;

    /// <summary>Scales a count that was chosen for <paramref name="ciSeconds"/> to the soak's length.</summary>
    public static int Scale(int ciCount, int ciSeconds) => (int)Math.Max(ciCount, (long)ciCount * Seconds(ciSeconds) / ciSeconds);
}

/// <summary>The kernel's own view: the inodes a fanotify group marks (from its fdinfo), and sysctls set for one test.</summary>
internal static class Kernel
{
    /// <summary>(device, inode) of every inode mark with events (not an ignore-only mark) of every fanotify group of this process.</summary>
    public static HashSet<(ulong Device, ulong Inode)> MarkedInodes()
    {
        var marks = new HashSet<(ulong, ulong)>();
        foreach (var line in KernelTestSupport.FdInfoLines(Environment.ProcessId, "anon_inode:[fanotify]"))
        {
            // fanotify ino:b1e073 sdev:fe00000 mflags:0 mask:8010000 ignored_mask:0 fhandle-bytes:8 ...
            if (!line.StartsWith("fanotify ino:", StringComparison.Ordinal))
            {
                continue;
            }

            var fields = line.Split(' ').Select(f => f.Split(':', 2)).Where(f => f.Length == 2).ToDictionary(f => f[0], f => f[1]);
            if (ulong.Parse(fields["mask"], NumberStyles.HexNumber, CultureInfo.InvariantCulture) != 0)
            {
                marks.Add((KernelDevice(ulong.Parse(fields["sdev"], NumberStyles.HexNumber, CultureInfo.InvariantCulture)), ulong.Parse(fields["ino"], NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
            }
        }

        return marks;
    }

    /// <summary>Every directory under <paramref name="root"/> (itself included), as (st_dev, st_ino), no link followed.</summary>
    public static async Task<HashSet<(ulong Device, ulong Inode)>> DirectoryInodesAsync(string root)
    {
        var result = await Attacker.RunAsync("inodes", root);
        return [.. result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).Select(p => (ulong.Parse(p[0], CultureInfo.InvariantCulture), ulong.Parse(p[1], CultureInfo.InvariantCulture)))];
    }

    /// <summary>Where some inodes are (for a failure's message): up to ten paths found under <paramref name="root"/>.</summary>
    public static async Task<string> DescribeAsync(string root, IEnumerable<(ulong Device, ulong Inode)> inodes)
    {
        var found = new List<string>();
        foreach (var (_, inode) in inodes.Take(10))
        {
            var find = await KernelTestSupport.RunAsync("/usr/bin/find", root, "-xdev", "-inum", inode.ToString(CultureInfo.InvariantCulture));
            found.Add($"{inode}={find.StdOut.Trim()}");
        }

        return string.Join(", ", found);
    }

    /// <summary>fdinfo's sdev is the kernel's dev_t (major &lt;&lt; 20 | minor); stat's st_dev is glibc's encoding.</summary>
    private static ulong KernelDevice(ulong kdev)
    {
        var major = (uint)(kdev >> 20);
        var minor = (uint)(kdev & 0xFFFFF);
        return ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);
    }
}

/// <summary>
/// One thread of a process stopped by the attacker program's <c>freeze</c> (ptrace; the rest of the process runs on),
/// as a call that hangs would hold it: what a stuck event loop looks like from outside. Disposing lets it go.
/// </summary>
internal sealed class FrozenThread : IDisposable
{
    private readonly System.Diagnostics.Process _freezer;

    private FrozenThread(System.Diagnostics.Process freezer) => _freezer = freezer;

    /// <summary>The ids of the threads of <paramref name="pid"/> named <paramref name="name"/> (as /proc shows it: 15 bytes at most).</summary>
    public static HashSet<int> ThreadsNamed(int pid, string name) =>
        [.. Directory.EnumerateDirectories($"/proc/{pid}/task")
            .Where(t => File.Exists(Path.Combine(t, "comm")) && TryRead(Path.Combine(t, "comm")) == name)
            .Select(t => int.Parse(Path.GetFileName(t), CultureInfo.InvariantCulture))];

    public static async Task<FrozenThread> FreezeAsync(int tid)
    {
        var start = new System.Diagnostics.ProcessStartInfo(Attacker.Path) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("freeze");
        start.ArgumentList.Add(tid.ToString(CultureInfo.InvariantCulture));
        var freezer = System.Diagnostics.Process.Start(start)!;
        var line = await freezer.StandardOutput.ReadLineAsync().WaitAsync(KernelTestSupport.Timeout);
        if (line != $"frozen {tid}")
        {
            freezer.Kill();
            freezer.Dispose();
            Assert.Fail($"freeze {tid}: {line}");
        }

        return new FrozenThread(freezer);
    }

    public void Dispose()
    {
        _freezer.StandardInput.Close(); // it detaches, and the thread runs on
        if (!_freezer.WaitForExit(10_000))
        {
            _freezer.Kill(); // a tracer's death lets its tracee go too
        }

        _freezer.Dispose();
    }

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path).TrimEnd('\n');
        }
        catch (IOException)
        {
            return null; // the thread ended meanwhile
        }
    }
}

/// <summary>The attacker program's <c>hammer</c>: opens and reads the paths over and over until stopped.</summary>
internal sealed class Hammer : IDisposable
{
    private readonly System.Diagnostics.Process _process;
    private readonly Task<string> _output;

    private Hammer(System.Diagnostics.Process process)
    {
        _process = process;
        _output = process.StandardOutput.ReadToEndAsync();
    }

    public static Hammer Start(params string[] paths)
    {
        var start = new System.Diagnostics.ProcessStartInfo(Attacker.Path) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("hammer");
        foreach (var path in paths)
        {
            start.ArgumentList.Add(path);
        }

        return new Hammer(System.Diagnostics.Process.Start(start)!);
    }

    /// <summary>Stops it; returns how many opens it made, how many were denied, and the paths it read EICAR from.</summary>
    public async Task<(long Opens, long Denied, IReadOnlyList<string> ReadEicar)> StopAsync()
    {
        _process.StandardInput.Close();
        var output = await _output.WaitAsync(KernelTestSupport.Timeout);
        await _process.WaitForExitAsync().WaitAsync(KernelTestSupport.Timeout);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var counts = lines[0].Split(' ');
        Assert.Equal("opens", counts[0]);
        return (long.Parse(counts[1], CultureInfo.InvariantCulture), long.Parse(counts[3], CultureInfo.InvariantCulture), [.. lines.Skip(1).Select(l => l["EICAR ".Length..])]);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        _process.Dispose();
    }
}
