using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OnAccess;
using OnAccess.ClamAV;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the ClamAV scanners.</summary>
public static class OnAccessClamAVBuilderExtensions
{
    /// <summary>Uses the in-process <see cref="HashDatabaseScanner"/> (EICAR built in).</summary>
    /// <param name="builder">The builder from <c>AddOnAccessScanning</c>.</param>
    /// <param name="configure">Sets the signature files.</param>
    /// <returns>The builder.</returns>
    public static IOnAccessBuilder AddHashDatabaseScanner(this IOnAccessBuilder builder, Action<HashDatabaseScannerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<HashDatabaseScannerOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        // A signature file that cannot be read would silently scan for less: start-up fails, naming it.
        options.ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HashDatabaseScannerOptions>, SignatureFilesValidator>());

        builder.Services.TryAddSingleton(sp => new HashDatabaseScanner(sp.GetRequiredService<IOptions<HashDatabaseScannerOptions>>().Value, sp.GetService<ILogger<HashDatabaseScanner>>()));
        builder.Services.RemoveAll<IScanner>();
        builder.Services.AddSingleton<IScanner>(sp => sp.GetRequiredService<HashDatabaseScanner>());
        return builder;
    }

    /// <summary>Uses <see cref="ClamdScanner"/>: clamd over a unix socket (fd passing) or TCP (INSTREAM).</summary>
    /// <param name="builder">The builder from <c>AddOnAccessScanning</c>.</param>
    /// <param name="configure">Sets the endpoints (or call <see cref="ClamdScannerOptions.FromClamdConf"/>).</param>
    /// <returns>The builder.</returns>
    public static IOnAccessBuilder AddClamdScanner(this IOnAccessBuilder builder, Action<ClamdScannerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptions<ClamdScannerOptions>().Configure(configure);
        return AddClamd(builder);
    }

    /// <summary>
    /// Uses <see cref="ClamdScanner"/> with its options bound from configuration: <c>Endpoints</c> (a list of
    /// <c>unix:/path</c> and <c>tcp://host:port</c>), <c>ReplyTimeout</c>, <c>EjectAfterFailures</c>,
    /// <c>ProbeInterval</c>, <c>ConnectTimeout</c>, <c>MaxIdleSessions</c>, <c>StreamMaxLength</c>, <c>Mode</c>,
    /// <c>TrustedUsers</c> (bound lists add to the defaults: <c>TrustedUsers</c> keeps <c>clamav</c>).
    /// </summary>
    /// <param name="builder">The builder from <c>AddOnAccessScanning</c>.</param>
    /// <param name="configuration">The section holding the options (for example <c>configuration.GetSection("Clamd")</c>).</param>
    /// <returns>The builder.</returns>
    public static IOnAccessBuilder AddClamdScanner(this IOnAccessBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configuration);
        builder.Services.AddOptions<ClamdScannerOptions>().Bind(configuration);
        return AddClamd(builder);
    }

    private static IOnAccessBuilder AddClamd(IOnAccessBuilder builder)
    {
        builder.Services.TryAddSingleton(sp => new ClamdScanner(sp.GetRequiredService<IOptions<ClamdScannerOptions>>().Value, sp.GetService<ILogger<ClamdScanner>>(), sp.GetService<IMeterFactory>()));
        builder.Services.RemoveAll<IScanner>();
        builder.Services.AddSingleton<IScanner>(sp => sp.GetRequiredService<ClamdScanner>());
        return builder;
    }
}

/// <summary>Names each signature file that cannot be read, so start-up fails with the file in the message.</summary>
internal sealed class SignatureFilesValidator : IValidateOptions<HashDatabaseScannerOptions>
{
    public ValidateOptionsResult Validate(string? name, HashDatabaseScannerOptions options)
    {
        var failures = new List<string>();
        foreach (var file in options.SignatureFiles)
        {
            try
            {
                using var stream = File.OpenRead(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                failures.Add($"signature file {file} cannot be read: {e.Message}");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
