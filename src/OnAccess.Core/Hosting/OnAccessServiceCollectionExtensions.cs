using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OnAccess;
using OnAccess.Config;
using OnAccess.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds on-access scanning to a host.</summary>
public static class OnAccessServiceCollectionExtensions
{
    /// <summary>Adds on-access scanning configured in code.</summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Sets the on-access directives.</param>
    /// <returns>A builder to add the scanner and observers.</returns>
    public static IOnAccessBuilder AddOnAccessScanning(this IServiceCollection services, Action<OnAccessOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<OnAccessOptions>().Configure(configure);
        return AddCore(services);
    }

    /// <summary>Adds on-access scanning bound from configuration (pass the <c>OnAccess</c> section; keys are the <see cref="OnAccessOptions"/> property names).</summary>
    /// <param name="services">The services.</param>
    /// <param name="configuration">The section to bind.</param>
    /// <returns>A builder to add the scanner and observers.</returns>
    public static IOnAccessBuilder AddOnAccessScanning(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<OnAccessOptions>().Bind(configuration);
        return AddCore(services);
    }

    /// <summary>
    /// Adds on-access scanning configured by a clamd.conf, read when the host starts; errors name the file, the
    /// line and the directive.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="clamdConfPath">The clamd.conf.</param>
    /// <param name="configure">Optional changes on top of the file (for example command-line flags).</param>
    /// <returns>A builder to add the scanner and observers.</returns>
    public static IOnAccessBuilder AddOnAccessScanning(this IServiceCollection services, string clamdConfPath, Action<OnAccessOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(clamdConfPath);
        services.TryAddSingleton(new ClamdConfSource(clamdConfPath));
        services.AddOptions<OnAccessOptions>().Configure<ClamdConfSource>((options, source) =>
        {
            source.Conf.ToOnAccessOptions().CopyTo(options);
            configure?.Invoke(options);
        });
        return AddCore(services);
    }

    private static OnAccessBuilder AddCore(IServiceCollection services)
    {
        services.AddOptions<OnAccessOptions>().ValidateOnStart();
        services.AddOptions<OnAccessEngineOptions>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OnAccessOptions>, OnAccessOptionsValidator>());
        services.TryAddSingleton(sp => new OnAccessPlanSource(sp.GetService<ClamdConfSource>()));
        services.TryAddSingleton(sp =>
        {
            // The instance ValidateOnStart validated (IOptionsMonitor's; IOptions<T>.Value would be another, validated
            // again): its plan was resolved then and is not resolved again.
            var options = sp.GetRequiredService<IOptionsMonitor<OnAccessOptions>>().CurrentValue;
            var plans = sp.GetRequiredService<OnAccessPlanSource>();
            var actions = sp.GetServices<IDetectionAction>();

            return new OnAccessMonitor(
                options,
                sp.GetService<IScanner>() ?? throw new InvalidOperationException("No IScanner is registered for on-access scanning: call AddScanner<T>() on the builder that AddOnAccessScanning returned (OnAccess.ClamAV offers AddHashDatabaseScanner and AddClamdScanner)."),
                sp.GetRequiredService<IOptions<OnAccessEngineOptions>>().Value,
                sp.GetServices<IOnAccessObserver>(),
                sp.GetService<ILoggerFactory>(),
                plans.Conf,
                sp.GetService<IMeterFactory>(),
                plans.PlanFor(options),
                actions);
        });
        services.TryAddSingleton<IOnAccessMonitor>(sp => sp.GetRequiredService<OnAccessMonitor>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, OnAccessHostedService>());
        return new OnAccessBuilder(services);
    }

    private sealed class OnAccessBuilder(IServiceCollection services) : IOnAccessBuilder
    {
        public IServiceCollection Services { get; } = services;

        public IOnAccessBuilder AddScanner<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TScanner>()
            where TScanner : class, IScanner
        {
            Services.RemoveAll<IScanner>();
            Services.AddSingleton<IScanner, TScanner>();
            return this;
        }

        public IOnAccessBuilder AddObserver<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TObserver>()
            where TObserver : class, IOnAccessObserver
        {
            Services.TryAddEnumerable(ServiceDescriptor.Singleton<IOnAccessObserver, TObserver>());
            return this;
        }

        public IOnAccessBuilder ConfigureEngine(Action<OnAccessEngineOptions> configure)
        {
            ArgumentNullException.ThrowIfNull(configure);
            Services.Configure(configure);
            return this;
        }
    }
}
