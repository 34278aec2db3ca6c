using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Client;
using Orleans.LIFL.Runtime.Messaging;

namespace Orleans.LIFL.Hosting;

/// <summary>Configures a cluster client: which cluster it connects to and how.</summary>
public interface IClientBuilder
{
    IServiceCollection Services { get; }

    IConfiguration Configuration { get; }
}

internal sealed class ClientBuilder(IServiceCollection services, IConfiguration configuration) : IClientBuilder
{
    public IServiceCollection Services { get; } = services;

    public IConfiguration Configuration { get; } = configuration;
}

/// <summary>How a client reaches the cluster (chosen by a Use... method on the client builder).</summary>
internal sealed record ClientConnection(InProcessClusterFabric Fabric, Func<(GrainClassRegistry Manifest, IReadOnlyList<string> StreamProviders)> Cluster);

public static class ClientHostingExtensions
{
    /// <summary>Adds an <see cref="IClusterClient"/> to this host, connected while the host runs.</summary>
    public static IHostApplicationBuilder UseLiflClient(this IHostApplicationBuilder builder, Action<IClientBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        if (builder.Services.Any(d => d.ServiceType == typeof(Runtime.Core.Silo)))
        {
            throw new InvalidOperationException("This host runs a silo: its IClusterClient is already registered; do not add UseLiflClient.");
        }

        builder.Services.AddOptions<MessagingOptions>().BindConfiguration($"{SiloHostingExtensions.ConfigurationSection}:Messaging").ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<MessagingOptions>, MessagingOptionsValidator>();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(sp =>
        {
            var connection = sp.GetService<ClientConnection>()
                ?? throw new InvalidOperationException("The cluster client has no connection configured: call a Use... method (for example UseInProcessTestCluster) in UseLiflClient.");
            var (manifest, streamProviders) = connection.Cluster();
            return new ClusterClient(connection.Fabric, manifest, streamProviders, sp.GetRequiredService<IOptions<MessagingOptions>>().Value,
                sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<TimeProvider>());
        });
        builder.Services.AddSingleton<IClusterClient>(sp => sp.GetRequiredService<ClusterClient>());
        builder.Services.AddSingleton<IGrainFactory>(sp => sp.GetRequiredService<ClusterClient>());
        builder.Services.AddHostedService<ClusterClientHostedService>();
        configure(new ClientBuilder(builder.Services, builder.Configuration));
        return builder;
    }
}

/// <summary>Connects the client when the host starts and closes it when the host stops.</summary>
internal sealed class ClusterClientHostedService(ClusterClient client) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => client.DisposeAsync().AsTask();
}
