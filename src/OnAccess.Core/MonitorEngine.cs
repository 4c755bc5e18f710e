using Microsoft.Extensions.Logging;
using OnAccess.Config;
using OnAccess.Fanotify;
using OnAccess.Inotify;
using OnAccess.Text;

namespace OnAccess;

/// <summary>
/// What one plan and one scanner make of the monitor: the policy, the caches, the dispatcher, the marks and their
/// groups, the directory tracker. A reload starts a whole new engine beside the running one (so for a moment both
/// hold every open either protects) and then hands over: the old one's groups are retired (new events there are
/// allowed: the new engine holds what it protects), their admitted accesses decided, and only then closed.
/// </summary>
internal sealed class MonitorEngine : IDisposable
{
    private readonly DecisionReporter _reporter;
    private readonly ILogger _logger;
    private Task _treeNotices = Task.CompletedTask;
    private DetectionActions? _actions;

    private MonitorEngine(OnAccessPlan plan, IScanner scanner, DecisionReporter reporter, ILogger logger)
    {
        Plan = plan;
        Scanner = scanner;
        _reporter = reporter;
        _logger = logger;
    }

    public OnAccessPlan Plan { get; }

    public IScanner Scanner { get; }

    public ScanDispatcher? Dispatcher { get; private set; }

    public CleanVerdicts? Verdicts { get; private set; }

    public MarkSet? Marks { get; private set; }

    public GroupRotation? Groups { get; private set; }

    public DirectoryTree? Tree { get; private set; }

    /// <summary>This namespace's mounts: which kernel paths are believed (null when no decision needs a path).</summary>
    public MountView? Mounts { get; private set; }

    /// <summary>Where opens on a subtree's filesystem lie; null when no root is marked so.</summary>
    public SubtreeScope? Scope { get; private set; }

    /// <summary>
    /// The most one read of the group takes: 4 KiB, so at most 170 events (and their pidfds) are open at once beyond
    /// the queue, the scans and the kernel cache, however many opens an attacker makes at once. A read returns
    /// whatever is there, so this costs nothing until more than that waits.
    /// </summary>
    public const int ReadBufferSize = FanotifyGroupOptions.MinReadBufferSize;

    /// <summary>The group whose events are decided now.</summary>
    public FanotifyGroup? CurrentGroup => Marks?.Current?.Group;

    /// <summary>How often the event loop's rescuer read in place of a scan that held the reader.</summary>
    public long Rescues => Marks?.Current?.Loop?.Rescues ?? 0;

    /// <summary>Directories protected now: tracked ones (each marked, or on a whole filesystem's mark), or the roots.</summary>
    public long MarkedDirectories => Tree?.DirectoryCount ?? Marks?.MarkedRoots ?? 0;

    /// <summary>
    /// Builds the engine of <paramref name="plan"/> and puts every mark in place (the tracker walks every root) before
    /// it returns. A plan that is not enabled makes an engine that holds nothing.
    /// </summary>
    /// <exception cref="Exception">Whatever stopped it; what was built is stopped and disposed first.</exception>
    public static async Task<MonitorEngine> StartAsync(OnAccessPlan plan, IScanner scanner, OnAccessEngineOptions engine, DecisionReporter reporter, DetectionActions? actions, ILoggerFactory loggerFactory, ILogger logger, CancellationToken cancellationToken)
    {
        var built = new MonitorEngine(plan, scanner, reporter, logger) { _actions = actions };
        if (plan.Enabled)
        {
            try
            {
                built.Build(engine, loggerFactory, cancellationToken);
            }
            catch
            {
                await built.StopAsync(handOver: false, TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false); // the group, the tracker, the dispatcher's threads
                built.Dispose();
                throw;
            }
        }

        return built;
    }

    /// <summary>
    /// Builds the engine that is to replace a running one: refused (stopped, disposed, <see cref="IOException"/>) when
    /// a directory could not be protected at once, for handing over then would leave it to the retry's backoff.
    /// </summary>
    public static async Task<MonitorEngine> StartReplacementAsync(OnAccessPlan plan, IScanner scanner, OnAccessEngineOptions engine, DecisionReporter reporter, DetectionActions? actions, ILoggerFactory loggerFactory, ILogger logger, CancellationToken cancellationToken)
    {
        var next = await StartAsync(plan, scanner, engine, reporter, actions, loggerFactory, logger, cancellationToken).ConfigureAwait(false);
        if (next.Tree?.UnprotectedCount is > 0 and var unprotected)
        {
            await next.StopAsync(handOver: false, TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false);
            next.Dispose();
            throw new IOException($"the new configuration could not protect {unprotected} directories at once (a watch or mark limit, or permissions; see log 204); the running configuration protects them meanwhile.");
        }

        return next;
    }

    /// <summary>The statistics the engine running now (if any) and the actions keep; the reporter adds its counts.</summary>
    public static OnAccessStatistics Statistics(MonitorEngine? engine, DetectionActions? actions) => new()
    {
        MarkedDirectories = engine?.MarkedDirectories ?? 0,
        QueueDepth = engine?.Dispatcher?.QueueDepth ?? 0,
        ScansInFlight = engine?.Dispatcher?.InFlight ?? 0,
        HungScans = engine?.Dispatcher?.Hung ?? 0,
        UnprotectedDirectories = engine?.Tree?.UnprotectedCount ?? 0,
        ProtectionFailures = engine?.Tree?.WatchFailureCount ?? 0,
        KernelCachedFiles = engine?.Verdicts?.KernelCached ?? 0,
        ActionsDone = actions?.Done ?? 0,
        ActionsFailed = actions?.Failed ?? 0,
        ActionsDropped = actions?.Dropped ?? 0,
        OutsideOpens = engine?.Scope?.OutsideOpens ?? 0,
        IgnoredOutsideDirectories = engine?.Scope?.IgnoredDirectories ?? 0,
    };

    /// <summary>Starts reading the tracker's notices and watching the scanner's signature generation.</summary>
    public void Run()
    {
        Groups?.WatchGenerations();
        if (Tree is not null)
        {
            _treeNotices = Task.Run(ConsumeTreeAsync, CancellationToken.None);
        }
    }

    /// <summary>
    /// Stops: with <paramref name="handOver"/>, the groups are retired first and their admitted accesses decided (a
    /// new engine holds every open now); without it, they close at once (the kernel allows what they hold). Then the
    /// tracker stops, and scans still running get at most <paramref name="scanBound"/> once their tokens are cancelled.
    /// </summary>
    /// <returns>How many scans were abandoned.</returns>
    public async Task<long> StopAsync(bool handOver, TimeSpan scanBound, CancellationToken cancellationToken)
    {
        try
        {
            if (Groups is not null)
            {
                await (handOver ? Groups.HandOverAsync() : Groups.StopAsync(cancellationToken)).ConfigureAwait(false);
            }

            if (Tree is not null)
            {
                await Tree.DisposeAsync().ConfigureAwait(false);
            }

            var abandoned = Dispatcher is null ? 0 : await Dispatcher.StopAsync(scanBound).ConfigureAwait(false);
            await _treeNotices.WaitAsync(cancellationToken).ConfigureAwait(false);
            return abandoned;
        }
        finally
        {
            Verdicts?.Dispose(); // the kernel cache's leases go with the group
            Mounts?.Dispose();
        }
    }

    /// <summary><see cref="StopAsync"/>, logging the scans it had to abandon.</summary>
    public async Task StopAndReportAsync(bool handOver, TimeSpan scanBound, CancellationToken cancellationToken)
    {
        var abandoned = await StopAsync(handOver, scanBound, cancellationToken).ConfigureAwait(false);
        if (abandoned > 0)
        {
            Log.ScansAbandoned(_logger, abandoned);
        }
    }

    public void Dispose()
    {
        Dispatcher?.Dispose();
        Groups?.Dispose();
    }

    private void Build(OnAccessEngineOptions engine, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var plan = Plan;
        var generations = Scanner as ISignatureGeneration;
        var policy = AccessPolicy.Create(plan, engine.QueueFullDecision, _logger);
        var mask = MarkSet.MaskFor(plan, engine, _logger);
        Verdicts = new CleanVerdicts(engine.CacheCapacity, engine.KernelCache ? engine.KernelCacheCapacity : 0, mask & (FanotifyEvents.OpenPermission | FanotifyEvents.OpenExecPermission | FanotifyEvents.AccessPermission), _logger);
        Dispatcher = new ScanDispatcher(Scanner, plan, engine.QueueCapacity, policy, Verdicts, _reporter, () => generations?.Generation ?? 0, _actions);
        var groupOptions = new FanotifyGroupOptions
        {
            Class = plan.Prevention ? FanotifyClass.Content : FanotifyClass.Notification,
            ReportPidFd = FanotifyCapabilities.Current.PidFd && (policy.UsesUserId || _reporter.WantsUser),
            ReadBufferSize = ReadBufferSize,
        };
        Marks = new MarkSet(plan, groupOptions, mask, loggerFactory, new ExtraScans(plan, Dispatcher, _reporter, _logger).Submit);
        var subtrees = plan.Roots.Any(r => r.Marking == RootMarking.FilesystemSubtree);
        if (policy.UsesPath || subtrees)
        {
            Mounts = new MountView();
        }

        if (subtrees)
        {
            Scope = new SubtreeScope(plan, Marks.IsWholeFilesystem, Mounts!, mask, _logger);
            Marks.Scope = Scope;
        }

        var fastPath = new FastPath(policy, Verdicts, Dispatcher, _reporter, Mounts, Scope);
        Groups = new GroupRotation(Marks, fastPath, Dispatcher, Verdicts, _reporter, generations, plan.ScanTimeout + TimeSpan.FromSeconds(1), _logger);
        Marks.ChooseWholeFilesystems();
        var group = Groups.Start(Groups.Generation);
        Marks.Use(group);
        if (plan.Mode == OnAccessMode.IncludePaths && plan.DynamicDirectoryDetermination)
        {
            Tree = new DirectoryTree(
                new DirectoryTreeOptions
                {
                    Roots = [.. plan.Roots.Select(r => new DirectoryTreeRoot(r.Path, r.Recursive))],
                    ExcludePaths = [.. plan.ExcludePaths],
                    ReportFiles = plan.ExtraScanning,
                    Handler = Marks,
                },
                loggerFactory.CreateLogger<DirectoryTree>());
            Groups.Tree = Tree;
            Tree.Start(); // every directory is marked through its own descriptor before this returns
        }
        else
        {
            Marks.MarkRoots(group);
        }

        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>The tracker's notices: overflows are counted; a directory that left the tree but could not be found
    /// again to unmark it (a filesystem without file handles) starts a new group, which marks only what is tracked.</summary>
    private async Task ConsumeTreeAsync()
    {
        await foreach (var change in Tree!.Events.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            switch (change.Kind)
            {
                case DirectoryTreeEventKind.Overflowed:
                    _reporter.Overflowed();
                    break;
                case DirectoryTreeEventKind.RemovalUncertain:
                    _ = Groups!.ReplaceAsync("a directory left the tree on a filesystem without file handles: " + DisplayText.Escape(change.Path));
                    break;
            }
        }
    }
}
