using System.Globalization;
using OnAccess.Paths;

namespace OnAccess.Config;

/// <summary>
/// Applies the guide's precedence rules to options, once, against the system as an <see cref="IPlanEnvironment"/> sees
/// it, with a diagnostic for each override or rejection; also decides how each root is marked.
/// </summary>
internal sealed class PlanResolver(OnAccessOptions options, ClamdConf? source, IPlanEnvironment environment)
{
    private readonly PlanFindings _found = new(source);

    public OnAccessPlan Resolve()
    {
        if (options.ScanOnAccess == false)
        {
            _found.Add(PlanDiagnosticCodes.Disabled, DiagnosticSeverity.Info, "ScanOnAccess is 'no': nothing is monitored and every other on-access directive is ignored.", ClamdDirectiveNames.ScanOnAccess);
            return new OnAccessPlan { Mode = OnAccessMode.Disabled, Diagnostics = _found.All };
        }

        if (options.ScanOnAccess is null)
        {
            _found.Add(PlanDiagnosticCodes.EnabledByDefault, DiagnosticSeverity.Info, "ScanOnAccess is not set: on-access monitoring is enabled, as in ClamAV 1.4 where the directive is deprecated.", ClamdDirectiveNames.ScanOnAccess);
        }

        CheckLimits();

        OnAccessPlan plan;
        if (options.MountPaths.Count > 0)
        {
            plan = ResolveMountPaths();
        }
        else if (options.IncludePaths.Count > 0)
        {
            plan = ResolveIncludePaths();
        }
        else
        {
            _found.Add(PlanDiagnosticCodes.NothingToWatch, DiagnosticSeverity.Error, "On-access monitoring is enabled but neither OnAccessIncludePath nor OnAccessMountPath is set: there is nothing to watch. Add a directory to protect, or set ScanOnAccess no.", ClamdDirectiveNames.IncludePath, ClamdDirectiveNames.MountPath);
            plan = new OnAccessPlan { Mode = OnAccessMode.IncludePaths };
        }

        var uids = Distinct(options.ExcludeRootUid ? [0u] : [], options.ExcludeUids, ClamdDirectiveNames.ExcludeUid, uid => uid.ToString(CultureInfo.InvariantCulture), (v, uid) => uint.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var u) && u == uid);
        var unames = Distinct([], options.ExcludeUnames, ClamdDirectiveNames.ExcludeUname, name => $"'{name}'", (v, name) => string.Equals(v, name, StringComparison.Ordinal));
        return new OnAccessPlan
        {
            Mode = plan.Mode,
            Prevention = plan.Prevention,
            DynamicDirectoryDetermination = plan.DynamicDirectoryDetermination,
            Roots = plan.Roots,
            ExcludePaths = plan.ExcludePaths,
            ExtraScanning = plan.ExtraScanning,
            MaxFileSize = options.MaxFileSize > 0 ? options.MaxFileSize : null,
            MaxThreads = options.MaxThreads,
            RetryAttempts = options.RetryAttempts,
            DenyOnError = options.DenyOnError,
            ScanTimeout = options.ScanTimeout,
            ExcludeUids = uids,
            ExcludeUnames = unames,
            Diagnostics = _found.All,
        };
    }

    /// <summary>
    /// <paramref name="given"/> and then each value of a repeatable directive once; each repeat is OA2007 at its own line
    /// (<paramref name="matches"/> tells a line's value from the repeated one).
    /// </summary>
    private List<T> Distinct<T>(List<T> given, IEnumerable<T> values, string directive, Func<T, string> shown, Func<string, T, bool> matches)
        where T : notnull
    {
        var seen = new Dictionary<T, int>();
        foreach (var value in values)
        {
            var occurrence = seen[value] = seen.GetValueOrDefault(value) + 1;
            if (occurrence > 1)
            {
                _found.AddRepeatedValue(directive, shown(value), occurrence, v => matches(v, value));
            }
            else if (!given.Contains(value))
            {
                given.Add(value);
            }
        }

        return given;
    }

    private void CheckLimits()
    {
        if (options.MaxFileSize == 0)
        {
            _found.Add(PlanDiagnosticCodes.UnlimitedFileSize, DiagnosticSeverity.Info, "OnAccessMaxFileSize is 0: files of every size are scanned.", ClamdDirectiveNames.MaxFileSize);
        }
        else if (options.MaxFileSize < 0)
        {
            _found.Add(PlanDiagnosticCodes.NegativeFileSize, DiagnosticSeverity.Error, $"OnAccessMaxFileSize is {options.MaxFileSize}; it must be 0 (no limit) or a positive size.", ClamdDirectiveNames.MaxFileSize);
        }

        if (options.MaxThreads <= 0)
        {
            _found.Add(PlanDiagnosticCodes.NoThreads, DiagnosticSeverity.Error, $"OnAccessMaxThreads is {options.MaxThreads}: no scan could ever run, so with prevention every access would hang. Use 1 or more.", ClamdDirectiveNames.MaxThreads);
        }

        if (options.RetryAttempts is < 0 or > 255)
        {
            _found.Add(PlanDiagnosticCodes.RetryAttemptsOutOfRange, DiagnosticSeverity.Error, $"OnAccessRetryAttempts is {options.RetryAttempts}; it must be from 0 to 255 (clamonacc stores it in one byte, so 256 would silently become 0).", ClamdDirectiveNames.RetryAttempts);
        }

        if (options.ScanTimeout <= TimeSpan.Zero)
        {
            _found.Add(PlanDiagnosticCodes.NoScanTimeout, DiagnosticSeverity.Error, $"OnAccessCurlTimeout is {options.ScanTimeout.TotalMilliseconds} ms: every scan would time out at once. Use a positive number of milliseconds.", ClamdDirectiveNames.CurlTimeout);
        }
    }

    private OnAccessPlan ResolveMountPaths()
    {
        const string Mount = ClamdDirectiveNames.MountPath;
        if (options.IncludePaths.Count > 0)
        {
            _found.Add(PlanDiagnosticCodes.IgnoredByMountPath, DiagnosticSeverity.Warning, "OnAccessIncludePath is ignored because OnAccessMountPath is set: mount paths pre-empt include paths.", ClamdDirectiveNames.IncludePath, Mount);
        }

        if (options.ExcludePaths.Count > 0)
        {
            _found.Add(PlanDiagnosticCodes.IgnoredByMountPath, DiagnosticSeverity.Warning, "OnAccessExcludePath is ignored because OnAccessMountPath is set: exclusions need the directory tracker, which mount paths turn off.", ClamdDirectiveNames.ExcludePath, Mount);
        }

        if (options.ExtraScanning)
        {
            _found.Add(PlanDiagnosticCodes.IgnoredByMountPath, DiagnosticSeverity.Warning, "OnAccessExtraScanning is ignored because OnAccessMountPath is set: extra scanning needs the directory tracker, which mount paths turn off.", ClamdDirectiveNames.ExtraScanning, Mount);
        }

        if (options.Prevention)
        {
            _found.Add(PlanDiagnosticCodes.IgnoredByMountPath, DiagnosticSeverity.Warning, "OnAccessPrevention is ignored because OnAccessMountPath is set: a whole mount is watched notify-only, so that the system cannot lock itself up. Use OnAccessIncludePath to block access.", ClamdDirectiveNames.Prevention, Mount);
        }

        if (options.DisableDdd)
        {
            _found.Add(PlanDiagnosticCodes.IgnoredByMountPath, DiagnosticSeverity.Warning, "OnAccessDisableDDD is ignored because OnAccessMountPath is set: mount paths never use the directory tracker.", ClamdDirectiveNames.DisableDdd, Mount);
        }

        var roots = new List<PlanRoot>();
        foreach (var raw in options.MountPaths)
        {
            if (!_found.Normalize(Mount, raw, out var path))
            {
                continue;
            }

            var kind = environment.GetPathKind(path);
            if (kind is PathKind.Missing or PathKind.Inaccessible)
            {
                _found.AddAt(PlanDiagnosticCodes.PathMissing, DiagnosticSeverity.Error, $"OnAccessMountPath {raw} {(kind == PathKind.Missing ? "does not exist" : "cannot be examined")}.", Mount, raw);
                continue;
            }

            if (!environment.IsMountPoint(path))
            {
                _found.AddAt(PlanDiagnosticCodes.NotAMountPoint, DiagnosticSeverity.Error, $"OnAccessMountPath {raw} is not a mount point (it is not listed in /proc/self/mountinfo). Name the mount point itself, or use OnAccessIncludePath for a directory.", Mount, raw);
                continue;
            }

            if (roots.Exists(r => r.Path == path))
            {
                _found.AddAt(PlanDiagnosticCodes.IncludesMerged, DiagnosticSeverity.Info, $"OnAccessMountPath {raw} is listed more than once; it is watched once.", Mount, raw);
                continue;
            }

            roots.Add(new PlanRoot(path, Recursive: true, RootMarking.Mount));
        }

        var scanner = source?.ScannerDirectories() ?? [];
        foreach (var (directive, dir) in scanner)
        {
            foreach (var root in roots.Where(r => r.Path == dir).ToList())
            {
                var raw = options.MountPaths.First(m => PathNormalizer.TryNormalize(m, out var p) && p == dir);
                _found.AddAt(PlanDiagnosticCodes.ScannerDirectoryIncluded, DiagnosticSeverity.Error, $"OnAccessMountPath {raw} is clamd's {directive}: clamd writes its files there while it scans; watching them would scan the scanner's own files. Watch other mounts.", Mount, raw);
                roots.Remove(root);
            }
        }

        var excludes = new List<string>();
        ExcludeScannerDirectories(scanner, [.. roots.Select(r => (r.Path, options.MountPaths.First(m => PathNormalizer.TryNormalize(m, out var p) && p == r.Path)))], excludes, Mount);
        return new OnAccessPlan { Mode = OnAccessMode.MountPaths, Roots = roots, ExcludePaths = excludes };
    }

    private OnAccessPlan ResolveIncludePaths()
    {
        const string Include = ClamdDirectiveNames.IncludePath;
        var ddd = !options.DisableDdd;
        if (!ddd)
        {
            _found.Add(PlanDiagnosticCodes.NonRecursiveIncludes, DiagnosticSeverity.Info, "OnAccessDisableDDD is 'yes': each OnAccessIncludePath is watched non-recursively (its files, not its subdirectories).", ClamdDirectiveNames.DisableDdd, Include);
            if (options.ExcludePaths.Count > 0)
            {
                _found.Add(PlanDiagnosticCodes.IgnoredWithoutDdd, DiagnosticSeverity.Warning, "OnAccessExcludePath is ignored because OnAccessDisableDDD is 'yes': without the directory tracker nothing below an include path is watched, so there is nothing to exclude.", ClamdDirectiveNames.ExcludePath, ClamdDirectiveNames.DisableDdd);
            }

            if (options.ExtraScanning)
            {
                _found.Add(PlanDiagnosticCodes.IgnoredWithoutDdd, DiagnosticSeverity.Warning, "OnAccessExtraScanning is ignored because OnAccessDisableDDD is 'yes': extra scanning relies on the directory tracker.", ClamdDirectiveNames.ExtraScanning, ClamdDirectiveNames.DisableDdd);
            }
        }

        var includes = new List<(string Path, string Raw)>();
        foreach (var raw in options.IncludePaths)
        {
            if (!_found.Normalize(Include, raw, out var path))
            {
                continue;
            }

            if (ddd && path == "/")
            {
                _found.AddAt(PlanDiagnosticCodes.RootInclude, DiagnosticSeverity.Error, $"OnAccessIncludePath {raw} is the root directory, which cannot be protected recursively: the system would block on its own files. Use OnAccessMountPath / to watch everything notify-only, or include narrower directories.", Include, raw);
                continue;
            }

            switch (environment.GetPathKind(path))
            {
                case PathKind.Missing:
                    _found.AddAt(PlanDiagnosticCodes.PathMissing, DiagnosticSeverity.Error, $"OnAccessIncludePath {raw} does not exist.", Include, raw);
                    continue;
                case PathKind.Inaccessible:
                    _found.AddAt(PlanDiagnosticCodes.PathMissing, DiagnosticSeverity.Error, $"OnAccessIncludePath {raw} cannot be examined (permission denied or I/O error).", Include, raw);
                    continue;
                case PathKind.SymbolicLink:
                    _found.AddAt(PlanDiagnosticCodes.SymbolicLink, DiagnosticSeverity.Error, $"OnAccessIncludePath {raw} is a symbolic link; symbolic links are never followed, so name the directory it points to.", Include, raw);
                    continue;
                case PathKind.Other:
                    _found.AddAt(PlanDiagnosticCodes.NotADirectory, DiagnosticSeverity.Error, $"OnAccessIncludePath {raw} is not a directory.", Include, raw);
                    continue;
            }

            includes.Add((path, raw));
        }

        var scanner = source?.ScannerDirectories() ?? [];
        foreach (var (directive, dir) in scanner)
        {
            foreach (var (path, raw) in includes.Where(i => i.Path == dir).ToList())
            {
                _found.AddAt(PlanDiagnosticCodes.ScannerDirectoryIncluded, DiagnosticSeverity.Error, $"OnAccessIncludePath {raw} is clamd's {directive}: clamd writes its files there while it scans (and reads its signatures), and an open of its own files held for a scan would deadlock the scan that makes it, as the ClamAV documentation warns. Protect other directories.", Include, raw);
                includes.Remove((path, raw));
            }
        }

        var excludes = ddd ? ResolveExcludes(includes) : [];
        if (ddd)
        {
            ExcludeScannerDirectories(scanner, includes, excludes, Include);
        }

        var roots = new List<PlanRoot>();
        foreach (var (path, raw) in includes)
        {
            if (roots.Exists(r => r.Path == path))
            {
                _found.AddAt(PlanDiagnosticCodes.IncludesMerged, DiagnosticSeverity.Info, $"OnAccessIncludePath {raw} is listed more than once; it is watched once.", Include, raw);
                continue;
            }

            // With DDD a nested include is already covered by its ancestor, unless an exclusion cuts it off.
            var cover = ddd
                ? includes.FirstOrDefault(o => PathPrefix.IsStrictlyUnder(path, o.Path) && !excludes.Any(e => PathPrefix.IsSameOrUnder(path, e) && PathPrefix.IsStrictlyUnder(e, o.Path))).Path
                : null;
            if (cover is not null)
            {
                _found.AddAt(PlanDiagnosticCodes.IncludesMerged, DiagnosticSeverity.Info, $"OnAccessIncludePath {raw} lies inside OnAccessIncludePath {cover}, which already covers it recursively; the two are merged.", Include, raw);
                continue;
            }

            roots.Add(new PlanRoot(path, Recursive: ddd, ddd ? RootMarking.DirectoryTree : RootMarking.Directory));
        }

        ChooseFilesystemMarks(roots, excludes, includes);

        return new OnAccessPlan
        {
            Mode = OnAccessMode.IncludePaths,
            Prevention = options.Prevention,
            DynamicDirectoryDetermination = ddd,
            Roots = roots,
            ExcludePaths = excludes,
            ExtraScanning = ddd && options.ExtraScanning,
        };
    }

    /// <summary>
    /// OA1022: a recursive root that is the root of a whole filesystem (a mount point showing its filesystem's root)
    /// with nothing excluded and no other root below it is protected by one filesystem mark instead of a mark on each
    /// directory: the same files (every file of that filesystem lies below it, by whatever path it is opened), one
    /// mark instead of thousands, and an open costs the kernel less.
    /// </summary>
    private void ChooseFilesystemMarks(List<PlanRoot> roots, List<string> excludes, List<(string Path, string Raw)> includes)
    {
        for (var i = 0; i < roots.Count; i++)
        {
            var root = roots[i];
            if (root.Marking != RootMarking.DirectoryTree
                || excludes.Exists(x => PathPrefix.IsSameOrUnder(x, root.Path))
                || roots.Exists(other => PathPrefix.IsStrictlyUnder(other.Path, root.Path) || PathPrefix.IsStrictlyUnder(root.Path, other.Path))
                || environment.WholeFilesystemType(root.Path) is not { } type)
            {
                continue;
            }

            roots[i] = root with { Marking = RootMarking.Filesystem };
            var raw = includes.First(i => i.Path == root.Path).Raw; // the first line that names it, as the user wrote it
            _found.AddAt(PlanDiagnosticCodes.FilesystemMark, DiagnosticSeverity.Info, $"OnAccessIncludePath {raw} is the root of a whole {type} filesystem with nothing excluded below it: it is protected by one filesystem mark instead of a mark on each directory. Directories of other filesystems mounted below it are marked one by one.", ClamdDirectiveNames.IncludePath, raw);
        }

        if (options.TreeMarking != TreeMarking.Filesystem)
        {
            return;
        }

        for (var i = 0; i < roots.Count; i++)
        {
            var root = roots[i];
            if (root.Marking != RootMarking.DirectoryTree)
            {
                continue;
            }

            var raw = includes.First(i => i.Path == root.Path).Raw;
            roots[i] = root with { Marking = RootMarking.FilesystemSubtree };
            var type = environment.FilesystemTypeOf(root.Path) ?? "unknown";
            _found.AddAt(PlanDiagnosticCodes.FilesystemSubtreeMark, DiagnosticSeverity.Info, $"OnAccessIncludePath {raw} is protected by one mark on the {type} filesystem that holds it (tree marking 'filesystem'): a directory is protected the instant it exists, with no window. Every open elsewhere on that filesystem is held too and answered at once; directories no user can move into the tree are then ignored by the kernel. Directories of other filesystems mounted below it are marked one by one.", ClamdDirectiveNames.IncludePath, raw);
        }
    }

    private List<string> ResolveExcludes(List<(string Path, string Raw)> includes)
    {
        const string Exclude = ClamdDirectiveNames.ExcludePath;
        var excludes = new List<(string Path, string Raw)>();
        foreach (var raw in options.ExcludePaths)
        {
            if (!_found.Normalize(Exclude, raw, out var path))
            {
                continue;
            }

            if (includes.Any(i => i.Path == path))
            {
                _found.AddAt(PlanDiagnosticCodes.ExcludeEqualsInclude, DiagnosticSeverity.Warning, $"OnAccessExcludePath {raw} equals an OnAccessIncludePath; ClamAV would then watch nothing there. The exclusion is ignored and the directory stays protected; remove one of the two.", Exclude, raw);
                continue;
            }

            if (!includes.Any(i => PathPrefix.IsStrictlyUnder(path, i.Path)))
            {
                _found.AddAt(PlanDiagnosticCodes.ExcludeOutsideIncludes, DiagnosticSeverity.Warning, $"OnAccessExcludePath {raw} is not inside any OnAccessIncludePath, so it has no effect.", Exclude, raw);
                continue;
            }

            excludes.Add((path, raw));
        }

        var result = new List<string>();
        foreach (var (path, raw) in excludes)
        {
            var cover = excludes.FirstOrDefault(o => PathPrefix.IsStrictlyUnder(path, o.Path)).Path;
            if (result.Contains(path) || cover is not null)
            {
                _found.AddAt(PlanDiagnosticCodes.ExcludesMerged, DiagnosticSeverity.Info, cover is null
                    ? $"OnAccessExcludePath {raw} is listed more than once; it is applied once."
                    : $"OnAccessExcludePath {raw} lies inside OnAccessExcludePath {cover}, which already excludes it.", Exclude, raw);
                continue;
            }

            result.Add(path);
        }

        return result;
    }

    /// <summary>
    /// OA1024: a root that holds the scanner's own directory excludes it, as if OnAccessExcludePath named it (an
    /// exclusion already covering it is enough; exclusions inside it are merged into it).
    /// </summary>
    private void ExcludeScannerDirectories(List<(string Directive, string Path)> scanner, List<(string Path, string Raw)> roots, List<string> excludes, string rootDirective)
    {
        foreach (var (directive, dir) in scanner)
        {
            if (roots.FirstOrDefault(r => PathPrefix.IsStrictlyUnder(dir, r.Path)) is not { Path: not null } cover || excludes.Exists(e => PathPrefix.IsSameOrUnder(dir, e)))
            {
                continue;
            }

            excludes.RemoveAll(e => PathPrefix.IsStrictlyUnder(e, dir));
            excludes.Add(dir);
            _found.AddAt(PlanDiagnosticCodes.ScannerDirectoryExcluded, DiagnosticSeverity.Warning, $"{rootDirective} {cover.Raw} holds clamd's {directive} {dir}: it is excluded, as if OnAccessExcludePath named it. clamd's own files are never held or scanned: a scan that waits on the scanner's own file never ends.", rootDirective, cover.Raw);
        }
    }
}
