using OnAccess.Tests;

namespace OnAccess.Fanotify.Tests;

/// <summary>
/// The binding against the real kernel, as root. Marks go only on directories these tests create or on a tmpfs
/// they mount; accessors are child processes; every wait has a timeout.
/// </summary>
[Collection(nameof(KernelCollection))]
public sealed class FanotifyKernelTests
{
    private static async Task<(FanotifyGroup Group, EventCollector Events)> StartAsync(FanotifyClass cls, Action<FanotifyGroup> mark, FanotifyGroupOptions? options = null)
    {
        options ??= new FanotifyGroupOptions();
        options.Class = cls;
        var group = FanotifyGroup.Create(options);
        mark(group);
        await Task.Yield();
        return (group, new EventCollector(group.StartReading()));
    }

    [Fact]
    public async Task Open_and_close_write_are_reported_under_a_directory_mark_with_event_on_child()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var file = tree.File("a.txt", "hello");
        var (group, events) = await StartAsync(FanotifyClass.Notification, g => g.AddMark(tree.Path, FanotifyEvents.Open | FanotifyEvents.CloseWrite, FanotifyMarkOptions.EventOnChild));
        using (group)
        await using (events)
        {
            var child = await KernelTestSupport.RunAsync("/bin/sh", "-c", $"echo more >> '{file}'");
            Assert.Equal(0, child.ExitCode);

            Assert.Equal(FanotifyEvents.Open | FanotifyEvents.CloseWrite, await events.WaitForAllAsync(file, child.Pid, FanotifyEvents.Open | FanotifyEvents.CloseWrite));

            var reader = await KernelTestSupport.RunAsync("/bin/cat", file);
            using var open = await events.NextAsync(e => e.ProcessId == reader.Pid);
            Assert.Equal(FanotifyEvents.Open, open.Events);
            Assert.False(open.IsPermissionRequest);
            var identity = open.GetFileIdentity();
            Assert.True(identity.IsRegularFile);
            Assert.Equal(new FileInfo(file).Length, identity.Size);
            Assert.Equal(open.GetFileIdentity(), FileIdentity.Of(File.OpenHandle(file)));
        }
    }

    [Fact]
    public async Task Open_and_close_write_are_reported_under_a_mount_mark_on_a_private_tmpfs()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var mount = await tree.MountTmpfsAsync("mnt");
        var (group, events) = await StartAsync(FanotifyClass.Notification, g => g.AddMark(mount, FanotifyEvents.Open | FanotifyEvents.CloseWrite, target: FanotifyMarkTarget.Mount));
        using (group)
        await using (events)
        {
            var file = Path.Combine(mount, "deep", "b.txt");
            var child = await KernelTestSupport.RunAsync("/bin/sh", "-c", $"mkdir -p '{mount}/deep' && echo data > '{file}'");
            Assert.Equal(0, child.ExitCode);
            Assert.Equal(FanotifyEvents.Open | FanotifyEvents.CloseWrite, await events.WaitForAllAsync(file, child.Pid, FanotifyEvents.Open | FanotifyEvents.CloseWrite));
        }
    }

    [Fact]
    public async Task A_denied_child_gets_EPERM_and_an_allowed_one_gets_the_bytes_read_through_the_event_fd()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        const string content = "the protected content\n";
        var file = tree.File("p.txt", content);
        var (group, events) = await StartAsync(FanotifyClass.Content, g => g.AddMark(tree.Path, FanotifyEvents.OpenPermission, FanotifyMarkOptions.EventOnChild));
        using (group)
        await using (events)
        {
            var denied = Task.Run(() => KernelTestSupport.RunAsync("/bin/cat", file));
            using (var e = await events.NextForPathAsync(file))
            {
                Assert.True(e.IsPermissionRequest);
                var buffer = new byte[4096];
                var n = RandomAccess.Read(e.File!, buffer, 0);
                Assert.Equal(content, System.Text.Encoding.UTF8.GetString(buffer, 0, n));
                Assert.True(e.Respond(FanotifyResponse.Deny));
                Assert.False(e.Respond(FanotifyResponse.Allow)); // answered exactly once
            }

            var deniedResult = await denied;
            Assert.NotEqual(0, deniedResult.ExitCode);
            Assert.Contains("Operation not permitted", deniedResult.StdErr, StringComparison.Ordinal);

            var allowed = Task.Run(() => KernelTestSupport.RunAsync("/bin/cat", file));
            using (var e = await events.NextForPathAsync(file))
            {
                Assert.True(e.Respond(FanotifyResponse.Allow));
            }

            var allowedResult = await allowed;
            Assert.Equal(0, allowedResult.ExitCode);
            Assert.Equal(content, allowedResult.StdOut);
        }
    }

    [Fact]
    public async Task Disposing_an_unanswered_permission_event_answers_the_default()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var file = tree.File("d.txt", "x");
        var options = new FanotifyGroupOptions { UnansweredResponse = FanotifyResponse.Deny };
        var (group, events) = await StartAsync(FanotifyClass.Content, g => g.AddMark(tree.Path, FanotifyEvents.OpenPermission, FanotifyMarkOptions.EventOnChild), options);
        using (group)
        await using (events)
        {
            var child = Task.Run(() => KernelTestSupport.RunAsync("/bin/cat", file));
            var e = await events.NextForPathAsync(file);
            e.Dispose();
            Assert.True(e.IsAnswered);
            Assert.Contains("Operation not permitted", (await child).StdErr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Answering_after_the_group_is_closed_throws_and_the_kernel_has_allowed_the_open()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var file = tree.File("c.txt", "closed");
        var (group, events) = await StartAsync(FanotifyClass.Content, g => g.AddMark(tree.Path, FanotifyEvents.OpenPermission, FanotifyMarkOptions.EventOnChild));
        await using (events)
        {
            var child = Task.Run(() => KernelTestSupport.RunAsync("/bin/cat", file));
            using var e = await events.NextForPathAsync(file);
            group.Dispose();
            Assert.Throws<ObjectDisposedException>(() => e.Respond(FanotifyResponse.Deny));
            var result = await child;
            Assert.Equal(0, result.ExitCode);
            Assert.Equal("closed", result.StdOut);
        }
    }

    [Theory]
    [InlineData(FanotifyIgnoreOptions.None)]
    [InlineData(FanotifyIgnoreOptions.Evictable)]
    public async Task An_ignore_mark_silences_an_inode_until_the_file_is_modified(FanotifyIgnoreOptions ignoreOptions)
    {
        KernelTestSupport.RequireRoot();
        Assert.SkipWhen(ignoreOptions == FanotifyIgnoreOptions.Evictable && !FanotifyCapabilities.Current.EvictableMarks, "this kernel has no evictable marks (Linux 5.19)");
        using var tree = KernelTestSupport.CreateTempTree();
        var file = tree.File("i.txt", "ignore me");
        var sentinel = tree.File("s.txt", "sentinel");
        var (group, events) = await StartAsync(FanotifyClass.Notification, g => g.AddMark(tree.Path, FanotifyEvents.Open, FanotifyMarkOptions.EventOnChild));
        using (group)
        await using (events)
        {
            await KernelTestSupport.RunAsync("/bin/cat", file);
            using (var first = await events.NextForPathAsync(file))
            {
                group.AddIgnoreMark(first.File!, FanotifyEvents.Open, ignoreOptions);
            }

            // The ignored file's open produces nothing: the next event is the sentinel's.
            await KernelTestSupport.RunAsync("/bin/cat", file);
            await KernelTestSupport.RunAsync("/bin/cat", sentinel);
            using (var next = await events.NextAsync(_ => true))
            {
                Assert.Equal(sentinel, next.GetPath());
            }

            // A write clears the ignore mark (no survive-modify): the writer's own open is still ignored (the mark is
            // cleared by the modification that follows it), and every open after that is reported again.
            var write = await KernelTestSupport.RunAsync("/bin/sh", "-c", $"echo changed >> '{file}'");
            Assert.Equal(0, write.ExitCode);
            var again = await KernelTestSupport.RunAsync("/bin/cat", file);
            using var back = await events.NextForPathAsync(file);
            Assert.Equal(again.Pid, back.ProcessId);
        }
    }

    [Fact]
    public async Task An_unread_group_overflows_reports_it_once_reading_resumes_and_keeps_working()
    {
        KernelTestSupport.RequireRoot();
        var capabilities = FanotifyCapabilities.Current;
        Assert.True(capabilities.MaxQueuedEvents > 0);
        using var tree = KernelTestSupport.CreateTempTree();
        var files = tree.Combine("many");
        Directory.CreateDirectory(files);
        var count = (int)capabilities.MaxQueuedEvents + 1000; // queued events of one file merge: one per file
        for (var i = 0; i < count; i++)
        {
            File.WriteAllBytes(Path.Combine(files, i.ToString(System.Globalization.CultureInfo.InvariantCulture)), []);
        }

        using var group = FanotifyGroup.Create(new FanotifyGroupOptions { Class = FanotifyClass.Notification });
        group.AddMark(files, FanotifyEvents.Open, FanotifyMarkOptions.EventOnChild);
        var burst = await KernelTestSupport.RunAsync("/bin/bash", "-c", $"for f in '{files}'/*; do : < \"$f\"; done");
        Assert.Equal(0, burst.ExitCode);

        await using var events = new EventCollector(group.StartReading());
        using (var overflow = await events.NextAsync(e => e.IsQueueOverflow))
        {
            Assert.Null(overflow.File);
        }

        Assert.Equal(1, events.Reader.OverflowCount);
        var after = await KernelTestSupport.RunAsync("/bin/cat", Path.Combine(files, "0"));
        using var next = await events.NextAsync(e => e.ProcessId == after.Pid);
        Assert.Equal(Path.Combine(files, "0"), next.GetPath());
    }

    /// <summary>Every feature probed arrived by Linux 6.0; this machine runs 6.18 (the negative case is the next test).</summary>
    [Fact]
    public void Probe_reports_what_this_kernel_has()
    {
        KernelTestSupport.RequireRoot();
        Assert.True(Environment.OSVersion.Version >= new Version(6, 0), $"this test expects Linux 6.0 or later, not {Environment.OSVersion.Version}");
        var c = FanotifyCapabilities.Probe();
        Assert.True(c.Available, c.UnavailableReason);
        Assert.True(c.PermissionEvents);
        Assert.True(c.OpenExecPermission);
        Assert.True(c.FilesystemMarks);
        Assert.True(c.PidFd);
        Assert.True(c.DirectoryFidAndName);
        Assert.True(c.EvictableMarks);
        Assert.True(c.IgnoreMark);
        static long Sysctl(string name) => long.Parse(File.ReadAllText("/proc/sys/fs/fanotify/" + name).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(Sysctl("max_user_marks"), c.MaxUserMarks);
        Assert.Equal(Sysctl("max_user_groups"), c.MaxUserGroups);
        Assert.Equal(Sysctl("max_queued_events"), c.MaxQueuedEvents);
    }

    /// <summary>On a thread without CAP_SYS_ADMIN, fanotify_init refuses a group like the engine's: the probe says so, and claims nothing.</summary>
    [Fact]
    public void Probe_without_CAP_SYS_ADMIN_reports_fanotify_unavailable_and_no_feature()
    {
        KernelTestSupport.RequireRoot();
        FanotifyCapabilities? c = null;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                ThreadCapabilities.DropEffective(ThreadCapabilities.CAP_SYS_ADMIN); // this thread only; it ends here
                c = FanotifyCapabilities.Probe();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        Assert.True(thread.Join(KernelTestSupport.Timeout));
        Assert.Null(failure);

        Assert.False(c!.Available);
        Assert.Contains("fanotify_init failed", c.UnavailableReason, StringComparison.Ordinal);
        Assert.Contains("(errno 1)", c.UnavailableReason, StringComparison.Ordinal); // EPERM
        Assert.Equal(
            (false, false, false, false, false, false, false),
            (c.PermissionEvents, c.OpenExecPermission, c.FilesystemMarks, c.PidFd, c.DirectoryFidAndName, c.EvictableMarks, c.IgnoreMark));
        Assert.True(c.MaxQueuedEvents > 0, "the limits are readable without the capability");

        // The process itself still has it.
        Assert.True(FanotifyCapabilities.Probe().Available);
    }

    [Fact]
    public void A_permission_mark_on_a_notification_group_is_refused_with_a_reason()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        using var group = FanotifyGroup.Create();
        var e = Assert.Throws<InvalidOperationException>(() => group.AddMark(tree.Path, FanotifyEvents.OpenPermission));
        Assert.Contains("Content", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_mark_on_a_missing_path_names_the_path()
    {
        KernelTestSupport.RequireRoot();
        using var group = FanotifyGroup.Create();
        var missing = "/nonexistent-onaccess-" + Guid.NewGuid().ToString("N");
        var e = Assert.Throws<FileNotFoundException>(() => group.AddMark(missing, FanotifyEvents.Open));
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
        Assert.False(group.RemoveMark(missing, FanotifyEvents.Open));
    }

    /// <summary>
    /// The pidfd names the process that opened the file (read back from its fdinfo while that process is alive), and
    /// the event owns it: disposing the event closes it.
    /// </summary>
    [Fact]
    public async Task A_pidfd_is_reported_and_owned_by_the_event()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree();
        var file = tree.File("pid.txt", "x");
        Directory.CreateDirectory(tree.Combine("sub"));
        var fifo = tree.Combine("sub", "fifo");
        Assert.Equal(0, (await KernelTestSupport.RunAsync("/usr/bin/mkfifo", fifo)).ExitCode);
        var (group, events) = await StartAsync(FanotifyClass.Notification, g => g.AddMark(tree.Path, FanotifyEvents.Open, FanotifyMarkOptions.EventOnChild), new FanotifyGroupOptions { ReportPidFd = true });
        using (group)
        await using (events)
        {
            // The shell (user 1000) opens the file itself, then waits on the FIFO (nobody writes it) until the test ends it.
            File.SetUnixFileMode(tree.Path, (UnixFileMode)0b111_101_101);
            File.SetUnixFileMode(fifo, (UnixFileMode)0b110_110_110);
            using var child = KernelTestSupport.Start("/usr/bin/setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "/bin/sh", "-c", $"exec 3< '{file}'; read x < '{fifo}'");
            try
            {
                var e = await events.NextAsync(e => e.ProcessId == child.Id);
                Assert.Equal(file, e.GetPath());
                Assert.False(e.ProcessExited);
                var pidfd = Assert.IsAssignableFrom<System.Runtime.InteropServices.SafeHandle>(e.ProcessFd);
                Assert.False(pidfd.IsInvalid);
                var fdinfo = File.ReadAllLines($"/proc/self/fdinfo/{pidfd.DangerousGetHandle()}");
                Assert.Contains($"Pid:\t{child.Id}", fdinfo);
                Assert.Contains(e.InfoRecords, r => r.Type == 4);
                Assert.Equal(1000u, e.GetProcessUserId()); // through the pidfd: that very process, not whoever has its ID now

                e.Dispose();
                Assert.True(pidfd.IsClosed);
            }
            finally
            {
                child.Kill(); // the shell this test started, waiting on the FIFO
                await child.WaitForExitAsync(new CancellationTokenSource(KernelTestSupport.Timeout).Token);
            }
        }
    }
}

[CollectionDefinition(nameof(KernelCollection), DisableParallelization = true)]
public sealed class KernelCollection;
