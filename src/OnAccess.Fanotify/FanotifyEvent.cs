using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using OnAccess.Kernel;
using static Interop.FanotifyConstants;

namespace OnAccess.Fanotify;

/// <summary>
/// One event read from a <see cref="FanotifyGroup"/> (<see cref="FanotifyGroup.ReadEvents"/>). It owns the event's descriptor (and pidfd, if reported).
/// A permission event must be answered exactly once with <see cref="Respond"/>; disposing it unanswered answers the
/// group's <see cref="FanotifyGroupOptions.UnansweredResponse"/> and logs a warning. Dispose every event.
/// </summary>
/// <remarks>
/// The descriptor has one owner, the <see cref="File"/> handle, whose reference count keeps the number from being
/// closed (and reused by the kernel for another event's file) while any read or answer through it is in flight: a
/// scan still reading after the event was disposed gets <see cref="ObjectDisposedException"/>, never another file.
/// <see cref="Respond"/> may race <see cref="Dispose"/> (a deadline answering while the scan finishes): exactly one
/// answer is written.
/// </remarks>
public sealed class FanotifyEvent : IDisposable
{
    private readonly FanotifyGroup? _group;
    private readonly SafeFileHandle? _file;
    private readonly int _fdNumber = -1;
    private int _answered;
    private int _disposed;

    internal FanotifyEvent(FanotifyGroup? group, ulong mask, int fd, int pid, IReadOnlyList<FanotifyInfoRecord> infoRecords, SafeDescriptorHandle? pidFd, bool processExited = false)
    {
        ProcessExited = processExited;
        _group = group;
        Events = (FanotifyEvents)(mask & ~(FAN_EVENT_ON_CHILD | FanotifyEventParser.ReadFailureMarker));
        ProcessId = pid;
        InfoRecords = infoRecords;
        ProcessFd = pidFd;
        if (fd >= 0)
        {
            _file = new SafeFileHandle(new IntPtr(fd), ownsHandle: true);
            _fdNumber = fd;
        }

        IsPermissionRequest = (mask & AllPermissionEvents) != 0 && _file is not null;
    }

    private FanotifyEvent(int errno)
    {
        ReadError = errno;
        InfoRecords = [];
        _answered = 1;
    }

    /// <summary>The events (several may be merged into one notification record).</summary>
    public FanotifyEvents Events { get; }

    /// <summary>The accessing process (or thread, with thread-id reporting); for a read failure, 0.</summary>
    public int ProcessId { get; }

    /// <summary>
    /// The accessed file, opened by the kernel for this event (reads through it generate no events). Read it with
    /// <see cref="RandomAccess"/>; do not dispose it (the event owns it). <see langword="null"/> when the event has
    /// no descriptor (overflow, read failure, file-id reporting).
    /// </summary>
    public SafeFileHandle? File => _file;

    /// <summary>The info records (file ids, names, pidfd, error); empty for classic events.</summary>
    public IReadOnlyList<FanotifyInfoRecord> InfoRecords { get; }

    /// <summary>A pidfd for the accessing process, with pidfd reporting; owned by the event.</summary>
    public SafeHandle? ProcessFd { get; }

    /// <summary>
    /// With pidfd reporting: the process had already exited and been reaped when the event was read (FAN_NOPIDFD),
    /// so nothing about it can be learned any more (its process ID may already name another process).
    /// </summary>
    public bool ProcessExited { get; }

    /// <summary>
    /// The accessing process's effective UID, read only from what pins that very process: the pidfd reported with the
    /// event (<see cref="FanotifyGroupOptions.ReportPidFd"/>), or, for a permission event without one, procfs while the
    /// process waits for the answer (its ID cannot be reused then). <see langword="null"/> when the process is already
    /// gone (reaped before this was read) or cannot be known: never guessed from a process ID that may name another
    /// process by now. Read it before disposing <see cref="ProcessFd"/>.
    /// </summary>
    /// <returns>The effective UID, or <see langword="null"/>.</returns>
    public uint? GetProcessUserId() => ProcessIdentity.EffectiveUid(this);

    /// <summary>Whether the accessing process is waiting for <see cref="Respond"/>.</summary>
    public bool IsPermissionRequest { get; }

    /// <summary>Whether the kernel's queue overflowed here (events were lost).</summary>
    public bool IsQueueOverflow => (Events & FanotifyEvents.QueueOverflow) != 0;

    /// <summary>
    /// For a failed read(2) (EMFILE, ENFILE, EOVERFLOW, EACCES): errno. The kernel has already denied the access it
    /// could not deliver. <see langword="null"/> for kernel events.
    /// </summary>
    public int? ReadError { get; }

    /// <summary>Whether a permission event has been answered.</summary>
    public bool IsAnswered => Volatile.Read(ref _answered) != 0;

    /// <summary>
    /// Answers a permission event, once. The descriptor stays open until the event is disposed, so the scanner may
    /// keep reading it after an early answer.
    /// </summary>
    /// <param name="response">Allow or deny.</param>
    /// <param name="audit">Ask the kernel to write an audit record (the group needs <see cref="FanotifyGroupOptions.EnableAudit"/>).</param>
    /// <returns><see langword="true"/> if this call answered; <see langword="false"/> if it was answered already or is not a permission event.</returns>
    /// <exception cref="ObjectDisposedException">The group is closed (the kernel has allowed the access) or the event is disposed.</exception>
    /// <exception cref="IOException">The kernel rejected the answer.</exception>
    public bool Respond(FanotifyResponse response, bool audit = false)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (!IsPermissionRequest)
        {
            return false;
        }

        // Hold the descriptor before claiming the answer: once claimed, nothing may close it before the answer is
        // written (the kernel keeps an event whose descriptor was closed unanswered until the group closes).
        var added = false;
        try
        {
            _file!.DangerousAddRef(ref added);
            if (Interlocked.Exchange(ref _answered, 1) != 0)
            {
                return false;
            }

            if (_group!.Respond(_fdNumber, response, audit) is { } e)
            {
                throw global::Interop.GetExceptionForError(e, "writing a fanotify response");
            }

            return true;
        }
        finally
        {
            if (added)
            {
                _file!.DangerousRelease();
            }
        }
    }

    /// <summary>The accessed file's path, for display only (readlink of the descriptor).</summary>
    /// <returns>The path, or <see langword="null"/> without a descriptor.</returns>
    public string? GetPath() => _file is null ? null : FileIdentity.PathOf(_file);

    /// <summary>The accessed file's path as the kernel gives it (bytes, not necessarily UTF-8), for display only.</summary>
    /// <returns>The path, or <see langword="null"/> without a descriptor or when it cannot be read (deeper than PATH_MAX).</returns>
    public byte[]? GetRawPath() => _file is null ? null : FileIdentity.RawPathOf(_file);

    /// <summary>The accessed file's identity from statx on the event's descriptor.</summary>
    /// <returns>Device, inode, size, mode, owner and times.</returns>
    /// <exception cref="InvalidOperationException">The event has no descriptor.</exception>
    public FileIdentity GetFileIdentity() =>
        _file is null ? throw new InvalidOperationException("The event has no file descriptor.") : FileIdentity.Of(_file);

    /// <summary>Answers an unanswered permission event with the group's default, then closes the descriptors.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (IsPermissionRequest && Interlocked.Exchange(ref _answered, 1) == 0 && _group is { IsClosed: false } group)
        {
            var response = group.Options.UnansweredResponse;
            try
            {
                if (group.Respond(_fdNumber, response, audit: false) is { } error)
                {
                    Log.ResponseFailed(group.Logger, ProcessId, error.RawErrno);
                }
                else
                {
                    Log.UnansweredPermissionEvent(group.Logger, ProcessId, _fdNumber, response);
                }
            }
            catch (ObjectDisposedException)
            {
                // Closed meanwhile: the kernel has allowed the access.
            }
        }

        _file?.Dispose();
        ProcessFd?.Dispose();
    }

    internal static FanotifyEvent ForReadFailure(int errno) => new(errno);

    /// <summary>The event a parsed record stands for: it takes ownership of the record's descriptors.</summary>
    internal static FanotifyEvent FromRecord(FanotifyGroup group, in FanotifyEventRecord record)
    {
        if (record.IsReadFailure)
        {
            return ForReadFailure(record.Pid);
        }

        IReadOnlyList<FanotifyInfoRecord> infos = [];
        SafeDescriptorHandle? pidFd = null;
        var exited = false;
        if (!record.Info.IsEmpty)
        {
            var list = new List<FanotifyInfoRecord>();
            var bytes = record.Info.ToArray();
            var offset = 0;
            while (offset + 4 <= bytes.Length)
            {
                var type = bytes[offset];
                var len = BitConverter.ToUInt16(bytes, offset + 2);
                if (len < 4 || offset + len > bytes.Length)
                {
                    break;
                }

                if (type == FAN_EVENT_INFO_TYPE_PIDFD && len >= 8)
                {
                    var fd = BitConverter.ToInt32(bytes, offset + 4);
                    if (fd >= 0)
                    {
                        pidFd = new SafeDescriptorHandle(fd);
                    }
                    else
                    {
                        exited = fd == FAN_NOPIDFD;
                    }
                }

                list.Add(new FanotifyInfoRecord(type, bytes.AsMemory(offset + 4, len - 4)));
                offset += len;
            }

            infos = list;
        }

        return new FanotifyEvent(group, record.Mask, record.Fd, record.Pid, infos, pidFd, exited);
    }
}
