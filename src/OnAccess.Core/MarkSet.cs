using Microsoft.Extensions.Logging;
using OnAccess.Config;
using OnAccess.Fanotify;
using OnAccess.Inotify;
using OnAccess.Kernel;
using OnAccess.Paths;

namespace OnAccess;

/// <summary>
/// The one owner of the fanotify group's marks: a filesystem mark for each include root that is a whole filesystem,
/// a directory mark for every other protected directory (put and taken away through a descriptor of that very
/// directory, as the <see cref="DirectoryTree"/> hands it over), and, for roots without a tracker, marks on the roots
/// themselves. A new group (new signatures, or a group that failed) is built beside the old one and takes over before
/// the old one closes. The verdict caches own the ignore marks.
/// </summary>
internal sealed class MarkSet(OnAccessPlan plan, FanotifyGroupOptions groupOptions, FanotifyEvents mask, ILoggerFactory loggerFactory, Action<TrackedFile> filesChanged) : IDirectoryTreeHandler
{
    private readonly FanotifyMarkTarget _target = plan.Mode == OnAccessMode.MountPaths ? FanotifyMarkTarget.Mount : FanotifyMarkTarget.Inode;
    private readonly ILogger _logger = loggerFactory.CreateLogger<MarkSet>();
    private volatile (string Path, ulong Device)[] _wholeFilesystems = []; // replaced whole, read on the tracker's thread
    private volatile GroupState? _current;
    private int _roots;

    /// <summary>The group that takes new marks and whose events are decided.</summary>
    public GroupState? Current => _current;

    /// <summary>The roots marked directly (no tracker).</summary>
    public int MarkedRoots => Volatile.Read(ref _roots);

    private FanotifyMarkOptions DirectoryOptions => _target == FanotifyMarkTarget.Mount
        ? FanotifyMarkOptions.None
        : FanotifyMarkOptions.EventOnChild | FanotifyMarkOptions.OnlyDirectory;

    /// <summary>
    /// The events a mark asks for: opens (permission events with prevention), and, as the engine options say, execs
    /// and reads. A kernel without exec permission events is logged and opens of programs are still scanned.
    /// </summary>
    public static FanotifyEvents MaskFor(OnAccessPlan plan, OnAccessEngineOptions engine, ILogger logger)
    {
        var mask = plan.Prevention ? FanotifyEvents.OpenPermission : FanotifyEvents.Open;
        if (engine.ExecPermission)
        {
            if (FanotifyCapabilities.Current.OpenExecPermission)
            {
                mask |= plan.Prevention ? FanotifyEvents.OpenExecPermission : FanotifyEvents.OpenExec;
            }
            else
            {
                Log.NoExecPermission(logger);
            }
        }

        if (engine.AccessPermission)
        {
            mask |= plan.Prevention ? FanotifyEvents.AccessPermission : FanotifyEvents.Access;
        }

        if (engine.CloseScanning)
        {
            mask |= FanotifyEvents.CloseWrite; // a notification in every mode: scanned after the close, nothing held
        }

        return mask;
    }

    /// <summary>
    /// The roots the plan marks with one filesystem mark (<see cref="RootMarking.Filesystem"/>, OA1022). A kernel without
    /// filesystem marks, or a filesystem that refuses one, gets a mark on each directory instead (logged).
    /// </summary>
    public void ChooseWholeFilesystems()
    {
        foreach (var root in plan.Roots)
        {
            if (root.Marking is not (RootMarking.Filesystem or RootMarking.FilesystemSubtree))
            {
                continue;
            }

            if (!FanotifyCapabilities.Current.FilesystemMarks)
            {
                Log.WholeFilesystemRefused(_logger, root.Path, "this kernel has no filesystem marks");
            }
            else
            {
                using var fd = Descriptors.OpenDirectory(root.Path, out var errno)
                    ?? throw Interop.GetExceptionForError(Interop.ErrorInfo.FromErrno(errno), "open", root.Path);
                if (!Descriptors.TryGetIdentity(fd, out var id, out _, out _) || IsWholeFilesystem(id.Device))
                {
                    continue;
                }

                _wholeFilesystems = [.. _wholeFilesystems, (root.Path, id.Device)];
                if (root.Marking == RootMarking.Filesystem)
                {
                    Log.WholeFilesystem(_logger, root.Path);
                }
                else
                {
                    Log.FilesystemSubtree(_logger, root.Path);
                }
            }
        }
    }

    /// <summary>A new group with the filesystem marks (not yet current: <see cref="Use"/> switches to it).</summary>
    public GroupState CreateGroup(long generation)
    {
        var group = FanotifyGroup.Create(groupOptions, loggerFactory.CreateLogger<FanotifyGroup>());
        foreach (var whole in _wholeFilesystems)
        {
            try
            {
                group.AddMark(whole.Path, mask, FanotifyMarkOptions.None, FanotifyMarkTarget.Filesystem);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
            {
                // This filesystem refuses a filesystem mark: its directories are marked one by one instead.
                Log.WholeFilesystemRefused(_logger, whole.Path, e.Message);
                _wholeFilesystems = [.. _wholeFilesystems.Where(w => w != whole)];
            }
        }

        return new GroupState(group, generation);
    }

    /// <summary>Makes <paramref name="group"/> the one that takes marks from now on.</summary>
    public void Use(GroupState group) => _current = group;

    /// <summary>Marks the plan's roots directly (mount paths, or include paths without the tracker).</summary>
    /// <exception cref="IOException">A root cannot be marked (the message names it and the reason).</exception>
    public void MarkRoots(GroupState group)
    {
        var count = 0;
        foreach (var root in plan.Roots)
        {
            if (_target == FanotifyMarkTarget.Mount)
            {
                group.Group.AddMark(root.Path, mask, FanotifyMarkOptions.None, FanotifyMarkTarget.Mount);
            }
            else
            {
                using var fd = Descriptors.OpenDirectory(root.Path, out var errno)
                    ?? throw Interop.GetExceptionForError(Interop.ErrorInfo.FromErrno(errno), "open", root.Path);
                if (!Covered(fd))
                {
                    group.Group.AddMark(fd, mask, DirectoryOptions);
                }
            }

            count++;
        }

        Volatile.Write(ref _roots, count);
    }

    /// <summary>Where opens on a subtree's filesystem lie (set by the engine when the plan has such roots).</summary>
    public SubtreeScope? Scope { get; set; }

    /// <inheritdoc />
    public void DirectoryAdded(TrackedDirectory directory)
    {
        if (IsWholeFilesystem(directory.Device))
        {
            // Its filesystem mark already holds every open; an ignore mark it brought from outside goes.
            if (Scope is { } scope && _current is { } current && scope.Covers(directory.Device))
            {
                scope.Arrived(current.Group, directory.Descriptor);
            }

            return;
        }

        var group = _current ?? throw new InvalidOperationException("No fanotify group to mark in.");
        try
        {
            group.Group.AddMark(directory.Descriptor, mask, DirectoryOptions);
        }
        catch (ObjectDisposedException e)
        {
            throw new InvalidOperationException("The fanotify group is closed.", e);
        }
    }

    /// <inheritdoc />
    public void DirectoryRemoved(TrackedDirectory directory)
    {
        if (IsWholeFilesystem(directory.Device) || _current is not { Group.IsClosed: false } group)
        {
            return;
        }

        try
        {
            group.Group.RemoveMark(directory.Descriptor, mask, DirectoryOptions);
        }
        catch (ObjectDisposedException)
        {
            // closed meanwhile: its marks went with it
        }
    }

    /// <inheritdoc />
    public void FileChanged(TrackedFile file) => filesChanged(file);

    private bool Covered(SafeDescriptorHandle fd) => Descriptors.TryGetIdentity(fd, out var id, out _, out _) && IsWholeFilesystem(id.Device);

    /// <summary>Whether <paramref name="device"/> holds a filesystem mark of this set (whole, or a subtree's).</summary>
    public bool IsWholeFilesystem(ulong device)
    {
        foreach (var whole in _wholeFilesystems)
        {
            if (whole.Device == device)
            {
                return true;
            }
        }

        return false;
    }
}
