using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using ConsoleMonitor.Tests;
using OnAccess.Tests;

namespace OnAccess.Adversity.Tests;

/// <summary>
/// ConsoleMonitor under a service manager (issue 16, item 3), with a NOTIFY_SOCKET of the test's own in place of
/// systemd's: READY=1 only once every mark is in place, WATCHDOG=1 while the event loop responds and silence while it
/// is stuck (its reading thread stopped in the kernel, the rest of the process running), STOPPING=1 on SIGTERM.
/// </summary>
public sealed class SystemdTests
{
    private const string ReaderThread = "OnAccess events";

    [Fact]
    public async Task Ready_comes_once_every_directory_is_marked_and_stopping_on_SIGTERM()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var eicar = tree.File("data/a/b/c/eicar.com", OnAccess.Core.Tests.EicarScanner.Eicar);
        using var notify = new NotifySocket(tree.Combine("notify.sock"));
        await using var monitor = MonitorProcess.StartWithEnvironment([$"NOTIFY_SOCKET={notify.Path}"], "--include", tree.Combine("data"), "--prevention");
        Assert.Equal("READY=1", await notify.NextAsync(KernelTestSupport.Timeout));

        // At READY every directory is marked already: the kernel shows the marks, and the deepest file is held.
        var marks = KernelTestSupport.FdInfoLines(monitor.Pid, "anon_inode:[fanotify]").Count(l => l.StartsWith("fanotify ino:", StringComparison.Ordinal));
        Assert.True(marks >= 4, $"{marks} marks at READY=1, for 4 directories");
        Assert.True(OnAccess.Core.Tests.Child.WasDenied(await OnAccess.Core.Tests.Child.CatAsync(eicar)));
        await monitor.ReadyAsync();

        await monitor.SignalAsync("TERM");
        Assert.Equal("STOPPING=1", await notify.NextMatchingAsync(m => m != "WATCHDOG=1", KernelTestSupport.Timeout));
        var stopped = await monitor.WaitForAsync(l => MonitorProcess.Event(l) == "stopped");
        Assert.Equal("healthy", stopped.GetProperty("health").GetString());
    }

    /// <summary>
    /// WATCHDOG_USEC=400000: told every 200 ms while healthy; the reading thread stopped and an open waiting: not told
    /// for two seconds (ten intervals) while the process runs on; the thread let go: told again.
    /// </summary>
    [Fact]
    public async Task The_watchdog_is_told_while_the_event_loop_responds_and_never_while_it_is_stuck()
    {
        KernelTestSupport.RequireRoot();
        using var tree = KernelTestSupport.CreateTempTree("onaccess-adv-");
        var file = tree.File("data/clean.txt", "clean");
        using var notify = new NotifySocket(tree.Combine("notify.sock"));
        await using var monitor = MonitorProcess.StartWithEnvironment([$"NOTIFY_SOCKET={notify.Path}", "WATCHDOG_USEC=400000"], "--include", tree.Combine("data"), "--prevention");
        Assert.Equal("READY=1", await notify.NextMatchingAsync(m => m != "WATCHDOG=1", KernelTestSupport.Timeout));
        await monitor.ReadyAsync();
        Assert.InRange(await notify.CountAsync("WATCHDOG=1", TimeSpan.FromSeconds(2)), 5, 15);

        var reader = Assert.Single(FrozenThread.ThreadsNamed(monitor.Pid, ReaderThread));
        Process cat;
        using (await FrozenThread.FreezeAsync(reader))
        {
            cat = KernelTestSupport.Start("/bin/cat", file); // its open waits: nobody reads the event
            await Task.Delay(TimeSpan.FromSeconds(1.5), TestContext.Current.CancellationToken); // the stall is seen within a second, and a check under way ends
            notify.Drain();
            Assert.Equal(0, await notify.CountAsync("WATCHDOG=1", TimeSpan.FromSeconds(2)));
            Assert.False(cat.HasExited, "the open was answered while the loop was stopped");
        }

        using (cat)
        {
            await cat.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(KernelTestSupport.Timeout, TestContext.Current.CancellationToken);
            Assert.Equal(0, cat.ExitCode);
        }

        Assert.True(await notify.CountAsync("WATCHDOG=1", TimeSpan.FromSeconds(1)) >= 2, "the watchdog is not told again");
        Assert.Equal(0, (await monitor.StopAsync()).ExitCode);
    }

    /// <summary>The datagram socket systemd gives a service (NOTIFY_SOCKET), bound by the test.</summary>
    private sealed class NotifySocket : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        private readonly Channel<string> _messages = Channel.CreateUnbounded<string>();
        private readonly Task _receiving;

        public NotifySocket(string path)
        {
            Path = path;
            _socket.Bind(new UnixDomainSocketEndPoint(path));
            _receiving = Task.Run(ReceiveAsync);
        }

        public string Path { get; }

        public async Task<string> NextAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            return await _messages.Reader.ReadAsync(cts.Token);
        }

        public async Task<string> NextMatchingAsync(Func<string, bool> match, TimeSpan timeout)
        {
            var until = DateTime.UtcNow + timeout;
            while (true)
            {
                var message = await NextAsync(until - DateTime.UtcNow);
                if (match(message))
                {
                    return message;
                }
            }
        }

        /// <summary>How many times <paramref name="message"/> comes within <paramref name="window"/> (others are skipped).</summary>
        public async Task<int> CountAsync(string message, TimeSpan window)
        {
            var count = 0;
            using var cts = new CancellationTokenSource(window);
            try
            {
                while (true)
                {
                    if (await _messages.Reader.ReadAsync(cts.Token) == message)
                    {
                        count++;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                return count;
            }
        }

        public void Drain()
        {
            while (_messages.Reader.TryRead(out _))
            {
            }
        }

        public void Dispose()
        {
            _socket.Dispose();
            _receiving.Wait(KernelTestSupport.Timeout);
            File.Delete(Path);
        }

        private async Task ReceiveAsync()
        {
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    var n = await _socket.ReceiveAsync(buffer, SocketFlags.None);
                    foreach (var line in Encoding.UTF8.GetString(buffer, 0, n).Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    {
                        _messages.Writer.TryWrite(line);
                    }
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                _messages.Writer.TryComplete();
            }
        }
    }
}
