using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;

namespace ConsoleMonitor;

/// <summary>
/// --log FILE: one line per log entry, appended; <see cref="Reopen"/> (on SIGHUP) closes the file and opens the path
/// again, so logrotate can move it away and the next line goes to a new file. The file is created 0640 (logs name
/// files and users), and only a regular file that is ours alone (see <see cref="Open"/>). A control character in a
/// message is written as \xHH, so an entry is one line; exceptions are written on lines of their own, indented.
/// </summary>
internal sealed class FileLog : ILoggerProvider
{
    private readonly Lock _gate = new();
    private readonly string _path;
    private StreamWriter _writer;

    public FileLog(string path)
    {
        _path = path;
        _writer = Open(path); // fails now, before anything starts, when the file cannot be written
    }

    /// <summary>Opens the path again (SIGHUP); when that fails, the file open now is kept and the reason returned.</summary>
    public string? Reopen()
    {
        StreamWriter next;
        try
        {
            next = Open(_path);
        }
        catch (IOException e)
        {
            return e.Message;
        }

        lock (_gate)
        {
            _writer.Dispose();
            _writer = next;
        }

        return null;
    }

    public ILogger CreateLogger(string categoryName) => new FileLogger(this, categoryName);

    public void Dispose()
    {
        lock (_gate)
        {
            _writer.Dispose();
        }
    }

    /// <summary>Writes one line; a write that fails (a full disk) loses the line, never the caller's work.</summary>
    private void Write(string line)
    {
        lock (_gate)
        {
            try
            {
                _writer.WriteLine(line);
                _writer.Flush();
            }
            catch (IOException)
            {
                // Logging must not fail what is logged: a decision, a scan, the event loop.
            }
        }
    }

    /// <summary>
    /// Opens for appending, and only a file that is ours alone: no link followed at the last component (a link planted
    /// where the log is to go would have root append to a file of the planter's choosing), no FIFO waited for, and the
    /// file must be a regular file with one name, owned by this process's user (not one an attacker made, or linked to
    /// somewhere they can read). It is made 0640 whatever the umask.
    /// </summary>
    private static StreamWriter Open(string path)
    {
        var handle = Interop.Open(path, Interop.O_WRONLY | Interop.O_CREAT | Interop.O_APPEND | Interop.O_NOFOLLOW | Interop.O_NONBLOCK | Interop.O_CLOEXEC, 0b110_100_000);
        if (handle.IsInvalid)
        {
            var errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            var why = errno == 40 ? "it is a symbolic link" : errno == 6 ? "it is a FIFO nobody reads" : Marshal.GetPInvokeErrorMessage(errno);
            throw new IOException($"--log {path}: cannot open it for appending: {why}.");
        }

        try
        {
            if (Interop.StatX(handle, string.Empty, Interop.AT_EMPTY_PATH, Interop.STATX_BASIC_STATS, out var stat) != 0)
            {
                throw new IOException($"--log {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
            }

            var problem = (stat.Mode & Interop.S_IFMT) != Interop.S_IFREG ? "it is not a regular file"
                : stat.NLink != 1 ? $"it has {stat.NLink} names (a hard link elsewhere would let others read the log)"
                : stat.Uid != Interop.GetEuid() ? $"it belongs to user {stat.Uid}, not to this process's user"
                : null;
            if (problem is not null)
            {
                throw new IOException($"--log {path}: refused: {problem}.");
            }

            if (OperatingSystem.IsLinux())
            {
                File.SetUnixFileMode(handle, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
            }
            if (Interop.Fcntl(handle, Interop.F_SETFL, Interop.O_APPEND) != 0) // blocking again: a slow disk waits, it does not fail
            {
                throw new IOException($"--log {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
            }

            return new StreamWriter(new FileStream(handle, FileAccess.Write), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private sealed class FileLogger(FileLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            // One entry, one line: a line break in a message (a name someone chose) cannot forge another entry.
            var line = string.Create(CultureInfo.InvariantCulture, $"{DateTimeOffset.Now:O} {Level(logLevel)}: {category}[{eventId.Id}] {OneLine(formatter(state, exception))}");
            if (exception is not null)
            {
                line += Environment.NewLine + "    " + exception.ToString().ReplaceLineEndings(Environment.NewLine + "    ");
            }

            log.Write(line);
        }

        private static string OneLine(string message) =>
            message.AsSpan().IndexOfAnyInRange('\0', '\x1f') < 0 ? message : string.Concat(message.Select(c => c < ' ' ? $"\\x{(int)c:x2}" : c.ToString()));

        private static string Level(LogLevel level) => level switch
        {
            LogLevel.Trace => "trce",
            LogLevel.Debug => "dbug",
            LogLevel.Information => "info",
            LogLevel.Warning => "warn",
            LogLevel.Error => "fail",
            _ => "crit",
        };
    }
}
