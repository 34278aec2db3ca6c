using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Runtime.Client;
using Orleans.LIFL.Runtime.Networking;

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
internal sealed record ClientConnection(Func<IServiceProvider, IClientTransport> CreateTransport);

/// <summary>The gateways a client starts from ("Lifl:Client:Gateways": host:port entries).</summary>
public sealed class ClientOptions
{
    public List<string> Gateways { get; set; } = [];
}

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

        SiloHostingExtensions.AddOptions<MessagingOptions, MessagingOptionsValidator>(builder.Services, "Messaging");
        SiloHostingExtensions.AddOptions<ClusterOptions, ClusterOptionsValidator>(builder.Services, "Cluster");
        SiloHostingExtensions.AddOptions<ConnectionOptions, ConnectionOptionsValidator>(builder.Services, "Connections");
        builder.Services.AddOptions<ClientOptions>().BindConfiguration($"{SiloHostingExtensions.ConfigurationSection}:Client");
        SiloHostingExtensions.AddDataplane(builder.Services);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(sp =>
        {
            var connection = sp.GetService<ClientConnection>()
                ?? throw new InvalidOperationException(
                    "The cluster client has no connection configured: call UseStaticGateways (or UseInProcessTestCluster in tests) in UseLiflClient.");
            return new ClusterClient(connection.CreateTransport(sp), sp.GetRequiredService<IOptions<MessagingOptions>>().Value,
                sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<TimeProvider>());
        });
        builder.Services.AddSingleton<IClusterClient>(sp => sp.GetRequiredService<ClusterClient>());
        builder.Services.AddSingleton<IGrainFactory>(sp => sp.GetRequiredService<ClusterClient>());
        builder.Services.AddHostedService<ClusterClientHostedService>();
        configure(new ClientBuilder(builder.Services, builder.Configuration));
        return builder;
    }

    /// <summary>
    /// Connects through TCP gateways ("host:port"), failing over to the other gateways the cluster reports. With no
    /// argument the list comes from configuration (Lifl:Client:Gateways).
    /// </summary>
    public static IClientBuilder UseStaticGateways(this IClientBuilder builder, params string[] gateways)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton(new ClientConnection(sp =>
        {
            var configured = gateways.Length > 0 ? gateways : [.. sp.GetRequiredService<IOptions<ClientOptions>>().Value.Gateways];
            var endpoints = configured.Select(g => IPEndPoint.TryParse(g, out var endpoint)
                ? endpoint
                : throw new InvalidOperationException($"Gateway '{g}' is not an IP endpoint (host:port).")).ToList();
            return new GatewayClientTransport(
                endpoints,
                sp.GetRequiredService<IOptions<ClusterOptions>>().Value,
                sp.GetRequiredService<IOptions<ConnectionOptions>>().Value,
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<GatewayClientTransport>>(),
                sp.GetRequiredService<Runtime.Dataplane.NodeDataplane>());
        }));
        return builder;
    }
}

/// <summary>Connects the client when the host starts and closes it when the host stops.</summary>
internal sealed class ClusterClientHostedService(ClusterClient client) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => client.ConnectAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => client.DisposeAsync().AsTask();
}
