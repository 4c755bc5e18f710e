using System.CommandLine;
using ConsoleMonitor;

var parsed = CommandLine.Parse(args, MonitorCommand.RunAsync, MonitorCommand.CheckConfig, MonitorCommand.Quarantine);
if (parsed.Errors.Count > 0)
{
    foreach (var error in parsed.Errors)
    {
        Console.Error.WriteLine(error.Message);
    }

    Console.Error.WriteLine(CommandLine.TryHelp);
    return 2;
}

// The host handles SIGINT and SIGTERM (and stops the monitor first); the parser must not end the process on its own.
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
