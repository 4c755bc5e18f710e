using OnAccess.Tests;

namespace OnAccess.Packaging.Tests;

/// <summary>
/// Packs the libraries to a local folder, creates a new console project outside the repository that references them
/// from that folder only (their dependencies come from the configured registry), builds it and runs it.
/// </summary>
public sealed class PackageSmokeTests
{
    private static readonly string[] Libraries = ["OnAccess.Config", "OnAccess.Fanotify", "OnAccess.Inotify", "OnAccess.Core", "OnAccess.ClamAV"];

    [Fact]
    public async Task The_packed_libraries_restore_build_and_run_in_a_new_project()
    {
        using var work = KernelTestSupport.CreateTempTree("onaccess-pack-");
        var app = await NewProjectAsync(work);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using OnAccess;
            using OnAccess.ClamAV;
            using OnAccess.Config;

            var directory = Directory.CreateTempSubdirectory("smoke-").FullName;
            var plan = OnAccessPlan.Resolve(ClamdConf.Parse($"OnAccessIncludePath {directory}\nOnAccessPrevention yes\n"));
            var file = Path.Combine(directory, "eicar.com");
            File.WriteAllText(file, HashDatabaseScanner.EicarTestString);
            using var handle = File.OpenHandle(file);
            var result = await new HashDatabaseScanner().ScanAsync(new ScanRequest(handle, file, RandomAccess.GetLength(handle), 0, null, AccessKind.Open), CancellationToken.None);
            Console.WriteLine($"{plan.Mode} {plan.Prevention} {plan.HasErrors} {result.Verdict} {result.ThreatName}");
            Directory.Delete(directory, recursive: true);
            """);
        var run = await KernelTestSupport.RunAsync("dotnet", ["run", "--project", app], TimeSpan.FromMinutes(5));
        Assert.True(run.ExitCode == 0, $"{run.StdOut} {run.StdErr}");
        Assert.Equal("IncludePaths True False Infected Eicar-Test-Signature", run.StdOut.Trim().Split('\n')[^1]);
    }

    /// <summary>
    /// README's host example, pasted as it stands into a new project that references the packages: it builds, and run
    /// as root from /usr (17,000 directories here) it holds inotify watches for what it protects only. The generic
    /// host's default watches its content root recursively to reload appsettings.json, one watch per directory, from
    /// the limit the directory tracker needs (a host started from /usr held 17,425).
    /// </summary>
    [Fact]
    public async Task The_README_host_example_builds_as_pasted_and_watches_only_what_it_protects()
    {
        KernelTestSupport.RequireRoot();
        var readme = File.ReadAllText(Path.Combine(Repository().FullName, "README.md"));
        var section = readme[readme.IndexOf("## In a host app", StringComparison.Ordinal)..];
        var start = section.IndexOf("```csharp\n", StringComparison.Ordinal) + "```csharp\n".Length;
        var example = section[start..section.IndexOf("```", start, StringComparison.Ordinal)];

        using var work = KernelTestSupport.CreateTempTree("onaccess-pack-");
        var app = await NewProjectAsync(work, hosting: true);
        File.WriteAllText(Path.Combine(app, "Program.cs"), example);
        var build = await KernelTestSupport.RunAsync("dotnet", ["build", app, "-o", work.Combine("out")], TimeSpan.FromMinutes(5));
        Assert.True(build.ExitCode == 0, $"README's example does not build as pasted: {build.StdOut} {build.StdErr}");

        var data = work.Combine("data");
        Directory.CreateDirectory(Path.Combine(data, "a", "b"));
        var conf = work.File("clamd.conf", $"OnAccessIncludePath {data}\nOnAccessPrevention yes\n");
        File.WriteAllText(work.Combine("local.hdb"), string.Empty);
        using var host = new System.Diagnostics.Process
        {
            StartInfo = new System.Diagnostics.ProcessStartInfo("dotnet", [work.Combine("out", "app.dll"), conf, work.Combine("local.hdb")])
            {
                WorkingDirectory = "/usr",
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            },
        };
        host.Start();
        try
        {
            // Started once it holds a fanotify group with its marks (the tracker has watched every directory by then).
            var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
            host.OutputDataReceived += (_, e) => output.Enqueue(e.Data ?? string.Empty);
            host.ErrorDataReceived += (_, e) => output.Enqueue(e.Data ?? string.Empty);
            host.BeginOutputReadLine();
            host.BeginErrorReadLine();
            var until = DateTime.UtcNow + KernelTestSupport.Timeout;
            int watches;
            while (!Fanotify(host.Id) || (watches = InotifyWatches(host.Id)) < 3)
            {
                Assert.False(host.HasExited, $"the example exited: {string.Join(" | ", output)}");
                Assert.True(DateTime.UtcNow < until, $"the example did not start: fanotify {Fanotify(host.Id)}, watches {InotifyWatches(host.Id)}: {string.Join(" | ", output)}");
                await Task.Delay(50, CancellationToken.None);
            }

            Assert.True(watches <= 3 + 4, $"the host holds {watches} inotify watches for 3 protected directories");
        }
        finally
        {
            host.Kill();
            await host.WaitForExitAsync(CancellationToken.None);
        }
    }

    private static bool Fanotify(int pid) => FdInfo(pid).Any(l => l.StartsWith("fanotify ", StringComparison.Ordinal));

    private static int InotifyWatches(int pid) => FdInfo(pid).Count(l => l.StartsWith("inotify wd:", StringComparison.Ordinal));

    /// <summary>Every line of every /proc/PID/fdinfo file (a descriptor closed meanwhile is skipped).</summary>
    private static List<string> FdInfo(int pid)
    {
        var lines = new List<string>();
        try
        {
            foreach (var file in Directory.EnumerateFiles($"/proc/{pid}/fdinfo"))
            {
                try
                {
                    lines.AddRange(File.ReadLines(file));
                }
                catch (IOException)
                {
                    // closed while we looked
                }
            }
        }
        catch (DirectoryNotFoundException)
        {
            // the process is gone: its exit is reported by the caller
        }

        return lines;
    }

    private static DirectoryInfo Repository()
    {
        var repo = new DirectoryInfo(AppContext.BaseDirectory);
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "OnAccess.sln")))
        {
            repo = repo.Parent;
        }

        Assert.NotNull(repo);
        return repo;
    }

    /// <summary>Packs the libraries into a feed of <paramref name="work"/> and makes a new console project that uses it.</summary>
    private static async Task<string> NewProjectAsync(KernelTestSupport.TempTree work, bool hosting = false)
    {
        var repo = Repository();
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var feed = work.Combine("feed");
        foreach (var library in Libraries)
        {
            var pack = await KernelTestSupport.RunAsync("dotnet", ["pack", Path.Combine(repo.FullName, "src", library), "-c", configuration, "--no-build", "-o", feed, "-p:Version=0.0.1-smoke"], TimeSpan.FromMinutes(5));
            Assert.True(pack.ExitCode == 0, $"pack {library}: {pack.StdOut} {pack.StdErr}");
        }

        var app = work.Combine("app");
        Directory.CreateDirectory(app);
        var globalPackages = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{work.Combine("packages")}" /></config>
              <fallbackPackageFolders><add key="global" value="{globalPackages}" /></fallbackPackageFolders>
              <packageSources>
                <clear />
                <add key="local" value="{feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="local"><package pattern="OnAccess.*" /></packageSource>
                <packageSource key="nuget.org"><package pattern="*" /></packageSource>
              </packageSourceMapping>
            </configuration>
            """);
        var hostingReference = hosting ? """<PackageReference Include="Microsoft.Extensions.Hosting" Version="10.0.12" />""" : string.Empty;
        File.WriteAllText(Path.Combine(app, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="OnAccess.Core" Version="0.0.1-smoke" />
                <PackageReference Include="OnAccess.ClamAV" Version="0.0.1-smoke" />
                {hostingReference}
              </ItemGroup>
            </Project>
            """);
        return app;
    }
}
