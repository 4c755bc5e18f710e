using System.Text;
using Microsoft.Extensions.Logging;
using OnAccess.Config;

namespace OnAccess;

/// <summary>
/// What the plan says about one access, from facts the engine gathered: pure, no I/O, the same answer on every
/// thread. The order is the design's: excluded user, excluded path, not a regular file, over the size limit
/// (each allowed unscanned); then a scan, whose verdict becomes an answer by the rules below.
/// </summary>
internal sealed class AccessPolicy
{
    private readonly HashSet<uint> _excludedUids;
    private readonly byte[][] _excludedPaths;
    private readonly long? _maxFileSize;
    private readonly AccessDecision? _queueFullDecision;

    public AccessPolicy(OnAccessPlan plan, IEnumerable<uint> excludedUids, AccessDecision? queueFullDecision)
    {
        Prevention = plan.Prevention;
        DenyOnError = plan.DenyOnError;
        _excludedUids = [.. excludedUids];
        // With include paths an exclusion is kept by never marking its directories: the kernel decides at the open, by
        // the directory the file was opened in. A path read after the open can have been changed by a rename (a file
        // flipped into an excluded directory and back while it was opened was read unscanned), so it excludes nothing
        // there. Mount paths (notify-only) mark whole mounts: there the scanner's own directories are told by path.
        _excludedPaths = plan.Mode == OnAccessMode.MountPaths ? [.. plan.ExcludePaths.Select(p => Encoding.UTF8.GetBytes(p))] : [];
        _maxFileSize = plan.MaxFileSize;
        _queueFullDecision = queueFullDecision;
    }

    /// <summary>
    /// The policy of a plan, with <c>OnAccessExcludeUname</c> names looked up once, now (a name the system does not
    /// know is logged and excludes nobody).
    /// </summary>
    public static AccessPolicy Create(OnAccessPlan plan, AccessDecision? queueFullDecision, ILogger logger)
    {
        HashSet<uint> uids = [.. plan.ExcludeUids];
        foreach (var name in plan.ExcludeUnames)
        {
            if (Interop.Libc.GetUserId(name) is { } uid)
            {
                uids.Add(uid);
            }
            else
            {
                Log.UnknownUser(logger, name);
            }
        }

        return new AccessPolicy(plan, uids, queueFullDecision);
    }

    public bool Prevention { get; }

    public bool DenyOnError { get; }

    /// <summary>Whether a decision needs the accessing user (an excluded UID or user name is configured).</summary>
    public bool UsesUserId => _excludedUids.Count > 0;

    /// <summary>Whether a decision needs the file's path (an exclude path is configured).</summary>
    public bool UsesPath => _excludedPaths.Length > 0;

    /// <summary>Why the access is allowed without a scan, or <see langword="null"/> when it is to be scanned.</summary>
    /// <param name="userId">The accessing process's effective UID, when known.</param>
    /// <param name="path">The file's path as the kernel's bytes, or empty when unknown.</param>
    /// <param name="isRegularFile">Whether it is a regular file.</param>
    /// <param name="size">Its size in bytes.</param>
    /// <param name="excludedPlace">Whether the engine found the file below an exclude path by its place (a subtree's
    /// filesystem mark: see <see cref="SubtreeScope"/>), not by a path.</param>
    public DecisionReason? Skip(uint? userId, ReadOnlySpan<byte> path, bool isRegularFile, long size, bool excludedPlace = false)
    {
        if (userId is { } uid && _excludedUids.Contains(uid))
        {
            return DecisionReason.ExcludedUser;
        }

        if (excludedPlace || (!path.IsEmpty && IsExcluded(path)))
        {
            return DecisionReason.ExcludedPath;
        }

        if (!isRegularFile)
        {
            return DecisionReason.NotRegularFile;
        }

        return _maxFileSize is { } max && size > max ? DecisionReason.TooLarge : null;
    }

    /// <summary>The answer for a scan's verdict: an infected file is denied (with prevention); a file that could not be
    /// scanned (error, timeout, skipped by the scanner) follows OnAccessDenyOnError; a clean one is allowed.</summary>
    /// <param name="verdict">The verdict, or <see langword="null"/> when the scan did not finish in time.</param>
    /// <param name="held">Whether the access is held (a permission event); otherwise nothing is answered.</param>
    public AccessDecision Answer(ScanVerdict? verdict, bool held) => !held ? AccessDecision.None : verdict switch
    {
        ScanVerdict.Clean => AccessDecision.Allow,
        ScanVerdict.Infected => Prevention ? AccessDecision.Deny : AccessDecision.Allow,
        _ => DenyOnError ? AccessDecision.Deny : AccessDecision.Allow,
    };

    /// <summary>The answer when the scan queue is full: the engine's setting, else OnAccessDenyOnError.</summary>
    public AccessDecision QueueFull(bool held) =>
        !held ? AccessDecision.None : _queueFullDecision ?? (DenyOnError ? AccessDecision.Deny : AccessDecision.Allow);

    private bool IsExcluded(ReadOnlySpan<byte> path)
    {
        foreach (var exclude in _excludedPaths)
        {
            if (exclude is [(byte)'/'] || (path.StartsWith(exclude) && (path.Length == exclude.Length || path[exclude.Length] == (byte)'/')))
            {
                return true;
            }
        }

        return false;
    }
}
