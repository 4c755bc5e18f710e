using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using OnAccess.ClamAV;

namespace OnAccess.Benchmarks;

/// <summary>
/// Scans per second through one ClamdScanner with 1, 2 and 3 local clamd endpoints (Debian's clamd, each with its own
/// small hash database, its clean-file cache off so every scan reads the whole file), a scanner-bound load: a fixed
/// number of parallel scans of large random files, sent by
/// descriptor (FILDES on each clamd's unix socket) or streamed (INSTREAM on its loopback TCP port). The phases take
/// turns for several rounds; medians are reported, with this machine's core count (the CPU is the ceiling once the
/// clamd together can use every core).
/// Usage: clamd-farm [--files N] [--size BYTES] [--parallel P] [--seconds S] [--rounds R] [--stream]
/// </summary>
internal static class ClamdFarmBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var files = BenchArgs.Option(args, "--files", 16);
        var size = BenchArgs.Option(args, "--size", 8 << 20);
        var parallel = BenchArgs.Option(args, "--parallel", 6);
        var seconds = BenchArgs.Option(args, "--seconds", 5);
        var rounds = BenchArgs.Option(args, "--rounds", 3);
        var stream = args.Contains("--stream");
        var root = Directory.CreateTempSubdirectory("onaccess-farm-bench-").FullName;
        var clamds = new List<(Process Process, string Unix, string Tcp)>();
        try
        {
            var samples = Enumerable.Range(0, files).Select(i => RandomFile(Path.Combine(root, $"sample{i}"), size)).ToList();
            for (var i = 0; i < 3; i++)
            {
                clamds.Add(await StartClamdAsync(Path.Combine(root, $"clamd{i}")));
            }

            // A warm-up phase on all three (clamd's first scans after start are slower), not counted.
            await MeasureAsync([.. clamds.Select(c => stream ? c.Tcp : c.Unix)], samples, parallel, TimeSpan.FromSeconds(seconds), stream);
            Console.WriteLine($"{Environment.ProcessorCount} cores; {files} files of {size / (1 << 20)} MiB; {parallel} scans at once; {(stream ? "INSTREAM over loopback TCP" : "FILDES over unix sockets")}; {seconds} s per phase, {rounds} rounds");
            var rates = new Dictionary<int, List<double>> { [1] = [], [2] = [], [3] = [] };
            for (var round = 0; round < rounds; round++)
            {
                foreach (var count in new[] { 1, 2, 3 })
                {
                    var endpoints = clamds.Take(count).Select(c => stream ? c.Tcp : c.Unix).ToList();
                    var (rate, shares) = await MeasureAsync(endpoints, samples, parallel, TimeSpan.FromSeconds(seconds), stream);
                    rates[count].Add(rate);
                    Console.WriteLine($"round {round + 1}: {count} endpoint(s): {rate:F1} scans/s (shares: {shares})");
                }
            }

            var one = BenchArgs.Median(rates[1]);
            Console.WriteLine();
            Console.WriteLine("| clamd endpoints | median scans/s | vs one |");
            Console.WriteLine("|---:|---:|---:|");
            foreach (var (count, list) in rates)
            {
                Console.WriteLine($"| {count} | {BenchArgs.Median(list):F1} | {BenchArgs.Median(list) / one:F2} |");
            }

            return 0;
        }
        finally
        {
            foreach (var (process, _, _) in clamds)
            {
                if (!process.HasExited)
                {
                    process.Kill();
                    process.WaitForExit(10_000);
                }

                process.Dispose();
            }

            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<(double Rate, string Shares)> MeasureAsync(List<string> endpoints, List<string> samples, int parallel, TimeSpan duration, bool stream)
    {
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = endpoints, Mode = stream ? ClamdScanMode.Stream : ClamdScanMode.Auto, StreamMaxLength = long.MaxValue });
        var scans = 0L;
        var errors = 0L;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, parallel).Select(worker => Task.Run(async () =>
        {
            var i = worker;
            while (watch.Elapsed < duration)
            {
                var path = samples[i++ % samples.Count];
                using var handle = File.OpenHandle(path);
                var result = await scanner.ScanAsync(new OnAccess.ScanRequest(handle, path, RandomAccess.GetLength(handle), 0, null, OnAccess.AccessKind.Open), CancellationToken.None);
                Interlocked.Increment(ref result.Verdict == OnAccess.ScanVerdict.Clean ? ref scans : ref errors);
            }
        })));
        var elapsed = watch.Elapsed.TotalSeconds;
        if (errors > 0)
        {
            throw new InvalidOperationException($"{errors} scans failed");
        }

        return (scans / elapsed, string.Join(", ", scanner.GetEndpointStatus().Select(s => s.Scans)));
    }

    private static async Task<(Process Process, string Unix, string Tcp)> StartClamdAsync(string directory)
    {
        Directory.CreateDirectory(Path.Combine(directory, "db"));
        Directory.CreateDirectory(Path.Combine(directory, "tmp"));
#pragma warning disable CA5351 // the .hdb format is MD5
        var eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"u8.ToArray();
        File.WriteAllText(Path.Combine(directory, "db", "bench.hdb"), $"{Convert.ToHexStringLower(MD5.HashData(eicar))}:{eicar.Length}:Bench.Eicar\n");
#pragma warning restore CA5351
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var socket = Path.Combine(directory, "clamd.sock");
        var conf = Path.Combine(directory, "clamd.conf");
        File.WriteAllText(conf, $"""
            LocalSocket {socket}
            TCPSocket {port}
            TCPAddr 127.0.0.1
            Foreground yes
            DatabaseDirectory {Path.Combine(directory, "db")}
            TemporaryDirectory {Path.Combine(directory, "tmp")}
            LogFile {Path.Combine(directory, "clamd.log")}
            MaxThreads 16
            StreamMaxLength 1G
            MaxScanSize 1G
            MaxFileSize 1G
            Bytecode no
            DisableCache yes
            """);
        var process = Process.Start(new ProcessStartInfo("/usr/sbin/clamd", $"--config-file={conf}") { RedirectStandardOutput = true, RedirectStandardError = true })
            ?? throw new InvalidOperationException("clamd did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var unix = "unix:" + socket;
        var tcp = $"tcp://127.0.0.1:{port}";
        await using var scanner = new ClamdScanner(new ClamdScannerOptions { Endpoints = [unix, tcp], StartupWait = TimeSpan.FromSeconds(60) });
        await scanner.WaitUntilReadyAsync(CancellationToken.None);
        var deadline = Stopwatch.StartNew();
        while ((await scanner.PingAsync()).Values.Any(up => !up) && deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(100);
        }

        return (process, unix, tcp);
    }

    private static string RandomFile(string path, int size)
    {
        var bytes = new byte[size];
        Random.Shared.NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
