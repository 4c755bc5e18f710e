using System.Diagnostics.CodeAnalysis;
using OnAccess;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Configures on-access scanning after <c>AddOnAccessScanning</c>.</summary>
public interface IOnAccessBuilder
{
    /// <summary>The services being configured.</summary>
    IServiceCollection Services { get; }

    /// <summary>Uses <typeparamref name="TScanner"/> as the scanner (a singleton; replaces any earlier scanner).</summary>
    /// <typeparam name="TScanner">The scanner type.</typeparam>
    /// <returns>This builder.</returns>
    IOnAccessBuilder AddScanner<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TScanner>()
        where TScanner : class, IScanner;

    /// <summary>Adds an observer of every decision (a singleton).</summary>
    /// <typeparam name="TObserver">The observer type.</typeparam>
    /// <returns>This builder.</returns>
    IOnAccessBuilder AddObserver<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TObserver>()
        where TObserver : class, IOnAccessObserver;

    /// <summary>Configures the engine beyond clamd.conf (queue size, per-read permission events, ...).</summary>
    /// <param name="configure">Sets the options.</param>
    /// <returns>This builder.</returns>
    IOnAccessBuilder ConfigureEngine(Action<OnAccessEngineOptions> configure);
}
