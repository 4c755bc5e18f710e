using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using OnAccess.Tests;

namespace OnAccess.Fanotify.Tests;

/// <summary>
/// <see cref="FanotifyGroup.ReadEvents"/>: events read on the calling thread, by several threads at once, against the
/// real kernel (root; marks only on directories these tests create; every wait has a timeout).
/// </summary>
[Collection(nameof(KernelCollection))]
public sealed partial class ReadEventsTests
{
    private const int RLIMIT_NOFILE = 7;

    [Fact]
    public async Task Permission_events_are_read_and_answered_on_the_calling_thread()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var allowed = tree.File("allowed.txt", "yes");
        var denied = tree.File("denied.txt", "no");
        using var group = FanotifyGroup.Create(new FanotifyGroupOptions { Class = FanotifyClass.Content });
        group.AddMark(tree.Path, FanotifyEvents.OpenPermission, FanotifyMarkOptions.EventOnChild);
        var answered = new ConcurrentQueue<string>();
        var reader = new Thread(() =>
        {
            var batch = new List<FanotifyEvent>();
            while (group.ReadEvents(batch))
            {
                foreach (var e in batch)
                {
                    using (e)
                    {
                        var path = e.GetPath()!;
                        e.Respond(path == denied ? FanotifyResponse.Deny : FanotifyResponse.Allow);
                        answered.Enqueue(path);
                    }
                }

                batch.Clear();
            }
        });
        reader.Start();

        var yes = await KernelTestSupport.RunAsync("/bin/cat", allowed);
        var no = await KernelTestSupport.RunAsync("/bin/cat", denied);

        Assert.Equal((0, "yes"), (yes.ExitCode, yes.StdOut));
        Assert.NotEqual(0, no.ExitCode);
        Assert.Contains("Operation not permitted", no.StdErr, StringComparison.Ordinal);
        Assert.Contains(allowed, answered);
        Assert.Contains(denied, answered);

        group.Dispose();
        Assert.True(reader.Join(KernelTestSupport.Timeout), "a thread waiting in ReadEvents returns when the group closes");
    }

    /// <summary>
    /// Two threads read one group at once: every event goes to exactly one of them, and both read. The opens are made
    /// all at once and held; the first thread to read holds its batch until the other has read one too, and a read
    /// takes at most 170 events (4 KiB), so the other always finds some left.
    /// </summary>
    [Fact]
    public async Task Two_threads_reading_at_once_get_every_event_exactly_once()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        const int files = 200;
        for (var i = 0; i < files; i++)
        {
            tree.File($"f{i}", "x");
        }

        using var group = FanotifyGroup.Create(new FanotifyGroupOptions { Class = FanotifyClass.Content, ReadBufferSize = FanotifyGroupOptions.MinReadBufferSize });
        group.AddMark(tree.Path, FanotifyEvents.OpenPermission, FanotifyMarkOptions.EventOnChild);
        var seen = new ConcurrentDictionary<string, int>();
        var readBy = new ConcurrentDictionary<int, int>(); // thread -> events read
        using var bothRead = new Barrier(2);
        var readers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            var batch = new List<FanotifyEvent>();
            var first = true;
            while (group.ReadEvents(batch))
            {
                if (batch.Count > 0 && first)
                {
                    first = false;
                    bothRead.SignalAndWait(KernelTestSupport.Timeout); // hold this batch until the other thread has one
                }

                foreach (var e in batch)
                {
                    using (e)
                    {
                        e.Respond(FanotifyResponse.Allow);
                        seen.AddOrUpdate(e.GetPath()!, 1, (_, n) => n + 1);
                        readBy.AddOrUpdate(Environment.CurrentManagedThreadId, 1, (_, n) => n + 1);
                    }
                }

                batch.Clear();
            }
        })).ToList();

        using var child = KernelTestSupport.Start("/bin/sh", "-c", $"cd '{tree.Path}' && for i in $(seq 0 {files - 1}); do cat f$i > /dev/null & done; wait");
        readers.ForEach(t => t.Start());
        await child.WaitForExitAsync(new CancellationTokenSource(KernelTestSupport.Timeout).Token);
        Assert.Equal(0, child.ExitCode);
        group.Dispose();
        Assert.All(readers, t => Assert.True(t.Join(KernelTestSupport.Timeout)));

        Assert.Equal(files, seen.Count);
        Assert.All(seen.Values, n => Assert.Equal(1, n));
        Assert.Equal(2, readBy.Count);
        Assert.Equal(files, readBy.Values.Sum());
    }

    /// <summary>
    /// One read takes at most <see cref="FanotifyGroupOptions.ReadBufferSize"/> bytes of records (24 bytes each here),
    /// however many events wait: so it bounds the descriptors one read opens. 400 opens are held before anything is read.
    /// </summary>
    [Theory]
    [InlineData(FanotifyGroupOptions.MinReadBufferSize, 4096 / 24)]
    [InlineData(FanotifyGroupOptions.MaxReadBufferSize, 400)]
    public async Task One_read_takes_at_most_ReadBufferSize_bytes_of_events(int readBufferSize, int expected)
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        const int files = 400;
        for (var i = 0; i < files; i++)
        {
            tree.File($"f{i}", "x");
        }

        using var group = FanotifyGroup.Create(new FanotifyGroupOptions { Class = FanotifyClass.Content, ReadBufferSize = readBufferSize });
        group.AddMark(tree.Path, FanotifyEvents.OpenPermission, FanotifyMarkOptions.EventOnChild);
        using var child = KernelTestSupport.Start("/bin/sh", "-c", $"cd '{tree.Path}' && for i in $(seq 0 {files - 1}); do cat f$i > /dev/null & done; wait");
        var batch = new List<FanotifyEvent>();
        var total = 0;
        try
        {
            await KernelTestSupport.WaitForHeldOpensAsync(child.Id, files);
            Assert.True(group.ReadEvents(batch, (int)KernelTestSupport.Timeout.TotalMilliseconds));
            Assert.Equal(expected, batch.Count);
            while (total < files)
            {
                total += batch.Count;
                foreach (var e in batch)
                {
                    e.Respond(FanotifyResponse.Allow);
                    e.Dispose();
                }

                batch.Clear();
                if (total < files)
                {
                    Assert.True(group.ReadEvents(batch, (int)KernelTestSupport.Timeout.TotalMilliseconds));
                    Assert.NotEmpty(batch);
                }
            }
        }
        finally
        {
            batch.ForEach(e => e.Dispose());
            group.Dispose(); // whatever is still held is allowed
            await child.WaitForExitAsync(new CancellationTokenSource(KernelTestSupport.Timeout).Token);
        }

        Assert.Equal(files, total);
        Assert.Equal(0, child.ExitCode);
    }

    [Theory]
    [InlineData(FanotifyGroupOptions.MinReadBufferSize - 1)]
    [InlineData(FanotifyGroupOptions.MaxReadBufferSize + 1)]
    public void A_read_buffer_size_out_of_range_is_refused_at_creation(int readBufferSize)
    {
        KernelTestSupport.RequireRoot();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => FanotifyGroup.Create(new FanotifyGroupOptions { ReadBufferSize = readBufferSize }));
        Assert.Equal("options.ReadBufferSize", e.ParamName);
    }

    [Fact]
    public void A_timeout_returns_with_no_events_and_a_closed_group_returns_false()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var group = FanotifyGroup.Create(new FanotifyGroupOptions { Class = FanotifyClass.Content });
        group.AddMark(tree.Path, FanotifyEvents.OpenPermission, FanotifyMarkOptions.EventOnChild);
        var batch = new List<FanotifyEvent>();

        Assert.True(group.ReadEvents(batch, millisecondsTimeout: 10));
        Assert.Empty(batch);

        group.Dispose();
        Assert.False(group.ReadEvents(batch));
        Assert.False(group.ReadEvents(batch, millisecondsTimeout: 10));
        Assert.Empty(batch);
    }

    [Fact]
    public async Task A_group_is_read_one_way_only_and_ReadEvents_refuses_a_blocking_group()
    {
        KernelTestSupport.RequireRoot();
        var batch = new List<FanotifyEvent>();
        using (var blocking = FanotifyGroup.Create(new FanotifyGroupOptions { NonBlocking = false }))
        {
            var e = Assert.Throws<InvalidOperationException>(() => blocking.ReadEvents(batch));
            Assert.Contains("NonBlocking", e.Message, StringComparison.Ordinal);
        }

        using var piped = FanotifyGroup.Create();
        await using var reader = piped.StartReading();
        var refused = Assert.Throws<InvalidOperationException>(() => piped.ReadEvents(batch));
        Assert.Contains("StartReading", refused.Message, StringComparison.Ordinal);

        using var direct = FanotifyGroup.Create();
        Assert.True(direct.ReadEvents(batch, millisecondsTimeout: 0));
        var noPipeline = Assert.Throws<InvalidOperationException>(() => direct.StartReading());
        Assert.Contains("ReadEvents", noPipeline.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_event_the_kernel_cannot_give_a_descriptor_comes_back_as_a_read_failure_and_the_open_is_denied()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var file = tree.File("held.txt", "x");
        using var group = FanotifyGroup.Create(new FanotifyGroupOptions { Class = FanotifyClass.Content });
        group.AddMark(tree.Path, FanotifyEvents.OpenPermission, FanotifyMarkOptions.EventOnChild);
        var batch = new List<FanotifyEvent>();
        Assert.True(group.ReadEvents(batch, millisecondsTimeout: 0)); // its wake-up descriptor exists from here on

        var child = KernelTestSupport.RunAsync("/bin/cat", file);
        var waited = 0;
        while (!HasPendingEvent(group) && waited++ < 2000)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        // No descriptor number left for this process (the limit is one above the highest number allowed, and every
        // number below the lowest free one is taken): the kernel cannot open the file for the event it would deliver.
        // poll(2) needs a limit of at least its 2 descriptors.
        var lowestFree = Dup(0); // dup(2) returns the lowest free descriptor number
        Assert.True(lowestFree >= 2, "descriptors 0 and 1 are open");
        Assert.Equal(0, Interop.Libc.Close(lowestFree));
        Assert.Equal(0, GetRLimit(RLIMIT_NOFILE, out var limit));
        var lowered = limit with { Current = (ulong)lowestFree };
        bool read;
        Assert.Equal(0, SetRLimit(RLIMIT_NOFILE, in lowered));
        try
        {
            read = group.ReadEvents(batch, millisecondsTimeout: 5000);
        }
        finally
        {
            Assert.Equal(0, SetRLimit(RLIMIT_NOFILE, in limit));
        }

        Assert.True(read);
        var failure = Assert.Single(batch);
        Assert.Equal(Interop.Errno.EMFILE, failure.ReadError);
        Assert.Null(failure.File);
        failure.Dispose();
        var result = await child;
        Assert.NotEqual(0, result.ExitCode); // the kernel denied the access it could not deliver
        Assert.Contains("Operation not permitted", result.StdErr, StringComparison.Ordinal);
    }

    /// <summary>Whether the group has an event queued: poll(2) with no timeout.</summary>
    private static unsafe bool HasPendingEvent(FanotifyGroup group)
    {
        var fd = new Interop.Libc.PollFd { Fd = (int)group.Handle.DangerousGetHandle(), Events = Interop.Libc.POLLIN };
        return Interop.Libc.Poll(&fd, 1, 0) == 1 && (fd.REvents & Interop.Libc.POLLIN) != 0;
    }

    [LibraryImport("libc", EntryPoint = "dup", SetLastError = true)]
    private static partial int Dup(int fd);

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);

    [StructLayout(LayoutKind.Sequential)]
    private record struct RLimit(ulong Current, ulong Maximum);
}
