using System.Diagnostics;
using System.Text;

namespace OnAccess;

/// <summary>
/// clamd.conf's <c>VirusEvent</c>: runs a command for each detection, with <c>%v</c> (the threat) and <c>%f</c> (the
/// file) substituted inside its arguments and <c>CLAM_VIRUSEVENT_VIRUSNAME</c> and <c>CLAM_VIRUSEVENT_FILENAME</c> in its
/// environment, as clamd documents it, but without a shell: the command line is split into words once, when it is
/// configured (spaces separate words; '...' and "..." group them; a backslash escapes the next character), and nothing
/// else in it means anything ($, `, ;, |, &amp;, &lt;, &gt;, * are characters like any other), so no file name can become a
/// command. The program must be an absolute path. Each run has a timeout (then it is killed), and its exit status is
/// the outcome; its output is read and dropped. A file name that is not UTF-8 is given in its escaped form (\xHH).
/// </summary>
public sealed class VirusEventAction : IDetectionAction
{
    private readonly string[] _words;
    private readonly TimeSpan _timeout;

    /// <summary>Prepares the command.</summary>
    /// <param name="commandLine">The VirusEvent value.</param>
    /// <param name="timeout">How long one run may take (30 s by default).</param>
    /// <exception cref="ArgumentException">The line is empty, has an unclosed quote, or its program is not an absolute path.</exception>
    public VirusEventAction(string commandLine, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        _words = Split(commandLine);
        if (_words.Length == 0 || !_words[0].StartsWith('/'))
        {
            throw new ArgumentException($"VirusEvent must start with the absolute path of a program (no shell runs it): '{commandLine}'.", nameof(commandLine));
        }

        _timeout = timeout ?? TimeSpan.FromSeconds(30);
    }

    /// <inheritdoc />
    public string Name => "virus-event";

    /// <inheritdoc />
    public async ValueTask<DetectionActionResult> RunAsync(Detection detection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(detection);
        // A name that is not UTF-8 cannot be passed as it is: its escaped form goes instead (\xHH), which names no other file.
        var file = detection.RawPath is { } raw ? (System.Text.Unicode.Utf8.IsValid(raw) ? Encoding.UTF8.GetString(raw) : Text.DisplayText.Escape(raw)) : string.Empty;
        var start = new ProcessStartInfo(_words[0])
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var word in _words.Skip(1))
        {
            start.ArgumentList.Add(word.Replace("%v", detection.ThreatName, StringComparison.Ordinal).Replace("%f", file, StringComparison.Ordinal));
        }

        start.Environment["CLAM_VIRUSEVENT_FILENAME"] = file;
        start.Environment["CLAM_VIRUSEVENT_VIRUSNAME"] = detection.ThreatName;
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("no process");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return DetectionActionResult.Failed($"{_words[0]} could not be started: {e.Message}");
        }

        using (process)
        {
            process.StandardInput.Close();
            var drain = Task.WhenAll(process.StandardOutput.BaseStream.CopyToAsync(Stream.Null, CancellationToken.None), process.StandardError.BaseStream.CopyToAsync(Stream.Null, CancellationToken.None));
            using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            bounded.CancelAfter(_timeout);
            try
            {
                await process.WaitForExitAsync(bounded.Token).ConfigureAwait(false);
                await drain.WaitAsync(bounded.Token).ConfigureAwait(false); // a child left holding its output does not hold us
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                return DetectionActionResult.Failed($"{_words[0]} (pid {process.Id}) ran longer than {_timeout.TotalSeconds:0.#} s and was killed");
            }

            return process.ExitCode == 0
                ? DetectionActionResult.Done($"{_words[0]} (pid {process.Id}) exited 0")
                : DetectionActionResult.Failed($"{_words[0]} (pid {process.Id}) exited {process.ExitCode}");
        }
    }

    /// <summary>Words, as described on the type: quotes group, a backslash escapes, nothing else is special.</summary>
    internal static string[] Split(string line)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        char? quote = null;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quote is { } q)
            {
                if (c == q)
                {
                    quote = null;
                }
                else if (c == '\\' && q == '"' && i + 1 < line.Length && line[i + 1] is '"' or '\\')
                {
                    word.Append(line[++i]);
                }
                else
                {
                    word.Append(c);
                }
            }
            else if (c is ' ' or '\t')
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }
            }
            else
            {
                inWord = true;
                if (c is '\'' or '"')
                {
                    quote = c;
                }
                else if (c == '\\' && i + 1 < line.Length)
                {
                    word.Append(line[++i]);
                }
                else
                {
                    word.Append(c);
                }
            }
        }

        if (quote is not null)
        {
            throw new ArgumentException($"VirusEvent has an unclosed quote: '{line}'.", nameof(line));
        }

        if (inWord)
        {
            words.Add(word.ToString());
        }

        return [.. words];
    }
}
