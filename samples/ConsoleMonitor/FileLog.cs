using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;

namespace ConsoleMonitor;

/// <summary>
/// --log FILE: one line per log entry, appended; <see cref="Reopen"/> (on SIGHUP) closes the file and opens the path
/// again, so logrotate can move it away and the next line goes to a new file. The file is created 0640 (logs name
/// files and users) and never through a symbolic link. Messages are escaped already where they carry someone else's text (the monitor's logging does
/// that); exceptions are written on lines of their own, indented.
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

    public void Reopen()
    {
        lock (_gate)
        {
            var next = Open(_path);
            _writer.Dispose();
            _writer = next;
        }
    }

    public ILogger CreateLogger(string categoryName) => new FileLogger(this, categoryName);

    public void Dispose()
    {
        lock (_gate)
        {
            _writer.Dispose();
        }
    }

    private void Write(string line)
    {
        lock (_gate)
        {
            _writer.WriteLine(line);
            _writer.Flush();
        }
    }

    /// <summary>
    /// Opens for appending without following a link at the last component (a link planted where the log is to go would
    /// have root append to a file of the planter's choosing) and without waiting on a FIFO.
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

        return new StreamWriter(new FileStream(handle, FileAccess.Write), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
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

            var line = string.Create(CultureInfo.InvariantCulture, $"{DateTimeOffset.Now:O} {Level(logLevel)}: {category}[{eventId.Id}] {formatter(state, exception)}");
            if (exception is not null)
            {
                line += Environment.NewLine + "    " + exception.ToString().ReplaceLineEndings(Environment.NewLine + "    ");
            }

            log.Write(line);
        }

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
