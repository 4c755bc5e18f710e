using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OnAccess;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// What is done about infected files once their accesses are answered (<see cref="IDetectionAction"/>): actions run in
/// the order they are added, after the answer, on a bounded queue (<see cref="OnAccessEngineOptions.ActionQueueCapacity"/>,
/// <see cref="OnAccessEngineOptions.ActionConcurrency"/>). A clamd.conf's <c>VirusEvent</c> is clamd's own to run when
/// clamd scans (it runs it for every detection, on-access ones included); with another scanner, add it with
/// <see cref="AddVirusEvent"/> (<c>conf.GetValue("VirusEvent")</c>).
/// </summary>
public static class OnAccessActionBuilderExtensions
{
    /// <summary>Adds an action (a singleton).</summary>
    /// <typeparam name="TAction">The action type.</typeparam>
    /// <param name="builder">The on-access builder.</param>
    /// <returns>The builder.</returns>
    public static IOnAccessBuilder AddDetectionAction<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TAction>(this IOnAccessBuilder builder)
        where TAction : class, IDetectionAction
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IDetectionAction, TAction>());
        return builder;
    }

    /// <summary>Moves (or copies) infected files into a <see cref="QuarantineStore"/> (clamonacc's <c>--move</c>, <c>--copy</c>).</summary>
    /// <param name="builder">The on-access builder.</param>
    /// <param name="configure">The quarantine directory and mode.</param>
    /// <returns>The builder.</returns>
    public static IOnAccessBuilder AddQuarantine(this IOnAccessBuilder builder, Action<QuarantineOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new QuarantineOptions();
        configure(options);
        builder.Services.AddSingleton(_ => new QuarantineStore(options.Directory));
        builder.Services.AddSingleton<IDetectionAction>(sp => new QuarantineAction(sp.GetRequiredService<QuarantineStore>(), options.Mode));
        return builder;
    }

    /// <summary>Removes infected files, only where the path still names the file that was scanned (clamonacc's <c>--remove</c>).</summary>
    /// <param name="builder">The on-access builder.</param>
    /// <returns>The builder.</returns>
    public static IOnAccessBuilder AddRemoval(this IOnAccessBuilder builder) => builder.AddDetectionAction<RemoveAction>();

    /// <summary>Runs a command for each detection, as clamd.conf's <c>VirusEvent</c> (see <see cref="VirusEventAction"/>: no shell).</summary>
    /// <param name="builder">The on-access builder.</param>
    /// <param name="commandLine">The command: an absolute program path and its arguments, with %v and %f.</param>
    /// <param name="timeout">How long one run may take (30 s by default).</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentException">The command line cannot be split, or its program is not an absolute path.</exception>
    public static IOnAccessBuilder AddVirusEvent(this IOnAccessBuilder builder, string commandLine, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var action = new VirusEventAction(commandLine, timeout); // split (and refused) now, not at the first detection
        builder.Services.AddSingleton<IDetectionAction>(action);
        return builder;
    }
}
