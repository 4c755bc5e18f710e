using Microsoft.Extensions.Configuration;

namespace OnAccess.Config.Tests;

public sealed class SystemIntegrationTests
{
    [Fact]
    public void Debians_installed_clamd_conf_parses_without_error()
    {
        // scripts/test.sh installs clamav-daemon, whose postinst writes this file.
        const string path = "/etc/clamav/clamd.conf";
        Assert.True(File.Exists(path), $"{path} is missing: install Debian's clamav-daemon (scripts/test.sh does).");
        var conf = ClamdConf.Load(path);
        Assert.Equal(5L << 20, conf.ToOnAccessOptions().MaxFileSize);
        Assert.NotNull(conf.LocalSocket);
        Assert.DoesNotContain(conf.Diagnostics, d => d.Severity == DiagnosticSeverity.Error);
    }

    [Fact]
    public void Options_bind_from_an_OnAccess_configuration_section_with_the_same_names()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OnAccess:ScanOnAccess"] = "true",
            ["OnAccess:IncludePaths:0"] = "/srv/a",
            ["OnAccess:IncludePaths:1"] = "/srv/b",
            ["OnAccess:ExcludePaths:0"] = "/srv/a/tmp",
            ["OnAccess:ExcludeUids:0"] = "1000",
            ["OnAccess:ExcludeUnames:0"] = "backup",
            ["OnAccess:ExcludeRootUid"] = "true",
            ["OnAccess:MaxFileSize"] = "1048576",
            ["OnAccess:MaxThreads"] = "3",
            ["OnAccess:RetryAttempts"] = "2",
            ["OnAccess:DenyOnError"] = "true",
            ["OnAccess:Prevention"] = "true",
            ["OnAccess:ExtraScanning"] = "true",
            ["OnAccess:ScanTimeout"] = "00:00:01.500",
        }).Build();

        var options = new OnAccessOptions();
        configuration.GetSection("OnAccess").Bind(options);

        Assert.True(options.ScanOnAccess);
        Assert.Equal(["/srv/a", "/srv/b"], options.IncludePaths);
        Assert.Equal(["/srv/a/tmp"], options.ExcludePaths);
        Assert.Equal([1000u], options.ExcludeUids);
        Assert.Equal(["backup"], options.ExcludeUnames);
        Assert.True(options.ExcludeRootUid);
        Assert.Equal(1048576, options.MaxFileSize);
        Assert.Equal(3, options.MaxThreads);
        Assert.Equal(2, options.RetryAttempts);
        Assert.True(options.DenyOnError);
        Assert.True(options.Prevention);
        Assert.True(options.ExtraScanning);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), options.ScanTimeout);
    }

    [Fact]
    public void The_system_environment_tells_directories_files_links_and_missing_paths_apart()
    {
        var root = Directory.CreateTempSubdirectory("onaccess-env-").FullName;
        try
        {
            var file = Path.Combine(root, "f");
            File.WriteAllText(file, "x");
            var link = Path.Combine(root, "l");
            File.CreateSymbolicLink(link, root);
            var dangling = Path.Combine(root, "d");
            File.CreateSymbolicLink(dangling, Path.Combine(root, "nowhere"));
            var env = new SystemPlanEnvironment();
            Assert.Equal(PathKind.Directory, env.GetPathKind(root));
            Assert.Equal(PathKind.Other, env.GetPathKind(file));
            Assert.Equal(PathKind.SymbolicLink, env.GetPathKind(link));
            Assert.Equal(PathKind.SymbolicLink, env.GetPathKind(dangling));
            Assert.Equal(PathKind.Missing, env.GetPathKind(Path.Combine(root, "missing")));
            Assert.True(env.IsMountPoint("/"));
            Assert.False(env.IsMountPoint(root));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>
    /// What the real environment answers for paths it cannot look up. A path below a regular file (ENOTDIR) is missing,
    /// and the plan says "does not exist"; the only answer "cannot be examined" the real environment gives as root is
    /// for a name the system cannot take at all (a NUL), which the plan's normaliser refuses first (OA1011).
    /// </summary>
    [Fact]
    public void The_system_environment_tells_a_missing_path_from_one_that_cannot_be_examined()
    {
        var root = Directory.CreateTempSubdirectory("onaccess-env-").FullName;
        try
        {
            var file = Path.Combine(root, "f");
            File.WriteAllText(file, "x");
            var belowFile = Path.Combine(file, "sub");
            var env = new SystemPlanEnvironment();
            Assert.Equal(PathKind.Missing, env.GetPathKind(belowFile)); // ENOTDIR
            Assert.Equal(PathKind.Missing, env.GetPathKind(Path.Combine(root, "absent"))); // ENOENT
            Assert.Equal(PathKind.Inaccessible, env.GetPathKind(root + "/a\0b"));
            Assert.Equal(PathKind.Inaccessible, env.GetPathKind(root + "/" + new string('n', 300))); // ENAMETOOLONG
            File.CreateSymbolicLink(Path.Combine(root, "loop"), Path.Combine(root, "loop"));
            Assert.Equal(PathKind.Inaccessible, env.GetPathKind(Path.Combine(root, "loop", "x"))); // ELOOP
            Assert.Equal(PathKind.SymbolicLink, env.GetPathKind(Path.Combine(root, "loop")));
            Assert.Equal(PathKind.Directory, env.GetPathKind(root));
            Assert.Equal(PathKind.Other, env.GetPathKind(file));

            var d = Assert.Single(OnAccessPlan.Resolve(new OnAccessOptions { IncludePaths = [root, belowFile] }).Diagnostics, d => d.Code == PlanDiagnosticCodes.PathMissing);
            Assert.Equal($"OnAccessIncludePath {belowFile} does not exist.", d.Message);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void The_system_environment_names_a_whole_filesystem_and_not_a_bind_mount_of_a_directory()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "22 1 0:21 / / rw - ext4 /dev/sda rw\n36 22 0:40 / /srv rw - xfs /dev/sdb rw\n37 22 98:0 /data/sub /mnt/bound rw - ext4 /dev/sda rw\n38 22 0:41 / /mnt/t\\040mp rw - tmpfs tmpfs rw\n");
            var env = new SystemPlanEnvironment(path);
            Assert.Equal("ext4", env.WholeFilesystemType("/"));
            Assert.Equal("xfs", env.WholeFilesystemType("/srv"));
            Assert.Equal("tmpfs", env.WholeFilesystemType("/mnt/t mp"));
            Assert.Null(env.WholeFilesystemType("/mnt/bound")); // a directory of /dev/sda mounted again
            Assert.Null(env.WholeFilesystemType("/srv/www")); // not a mount point
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Mountinfo_fields_are_decoded()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n37 35 98:0 /mnt2 /mnt/tab\\011back\\134slash rw - ext3 /dev/root rw\n22 1 0:21 / / rw - ext4 /dev/sda rw\nshort line\n");
            var points = OnAccess.Paths.MountTable.Read(path);
            Assert.Contains("/mnt/with space", points);
            Assert.Contains("/mnt/tab\tback\\slash", points); // DirectoryTree's former copy decoded only \040
            Assert.Contains("/", points);
            Assert.Equal(3, points.Count);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
