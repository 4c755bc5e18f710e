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
        var repo = new DirectoryInfo(AppContext.BaseDirectory);
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "OnAccess.sln")))
        {
            repo = repo.Parent;
        }

        Assert.NotNull(repo);
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        using var work = KernelTestSupport.CreateTempTree("onaccess-pack-");
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
        File.WriteAllText(Path.Combine(app, "app.csproj"), """
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
              </ItemGroup>
            </Project>
            """);
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
}
