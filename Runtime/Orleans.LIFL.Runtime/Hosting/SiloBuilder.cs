using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Core;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Runtime.MembershipService;
using Orleans.LIFL.Runtime.Messaging;
using Orleans.LIFL.Runtime.Placement;
using Orleans.LIFL.Runtime.Storage;
using Orleans.LIFL.Runtime.Streams;
using Orleans.LIFL.Streams;

namespace Orleans.LIFL.Hosting;

/// <summary>Configures a silo: its services, storage, streams and placement.</summary>
public interface ISiloBuilder
{
    IServiceCollection Services { get; }

    IConfiguration Configuration { get; }
}

internal sealed class SiloBuilder(IServiceCollection services, IConfiguration configuration) : ISiloBuilder
{
    public IServiceCollection Services { get; } = services;

    public IConfiguration Configuration { get; } = configuration;
}

public static class SiloHostingExtensions
{
    /// <summary>The configuration section silo options bind from ("Lifl:Messaging", "Lifl:GrainCollection", ...).</summary>
    public const string ConfigurationSection = "Lifl";

    /// <summary>Runs a silo in this host: embedded, in-process cluster by default.</summary>
    public static IHostApplicationBuilder UseLiflSilo(this IHostApplicationBuilder builder, Action<ISiloBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        AddSiloServices(builder.Services, builder.Configuration, configure);
        return builder;
    }

    /// <summary>Runs a silo in this host: embedded, in-process cluster by default.</summary>
    public static IHostBuilder UseLiflSilo(this IHostBuilder builder, Action<ISiloBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigureServices((context, services) => AddSiloServices(services, context.Configuration, configure));
    }

    private static void AddSiloServices(IServiceCollection services, IConfiguration configuration, Action<ISiloBuilder>? configure)
    {
        if (services.Any(d => d.ServiceType == typeof(Silo)))
        {
            throw new InvalidOperationException("UseLiflSilo was called twice on the same host.");
        }

        AddOptions<ClusterOptions, ClusterOptionsValidator>(services, "Cluster");
        AddOptions<SiloOptions, NoValidation<SiloOptions>>(services, "Silo");
        AddOptions<GrainCollectionOptions, GrainCollectionOptionsValidator>(services, "GrainCollection");
        AddOptions<MessagingOptions, MessagingOptionsValidator>(services, "Messaging");
        AddOptions<EndpointOptions, EndpointOptionsValidator>(services, "Endpoints");
        AddOptions<ConnectionOptions, ConnectionOptionsValidator>(services, "Connections");
        AddOptions<MembershipOptions, MembershipOptionsValidator>(services, "Membership");

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<InProcessClusterFabric>();
        services.TryAddSingleton<IMembershipTable>(sp => sp.GetRequiredService<InProcessClusterFabric>().Membership);
        services.TryAddSingleton<IGrainDirectory>(sp => sp.GetRequiredService<InProcessClusterFabric>().Directory);
        AddDataplane(services);
        services.TryAddSingleton<IBlobStorage>(sp => new MemoryBlobStorage(sp.GetRequiredService<InProcessClusterFabric>().Blobs, sp.GetRequiredService<SharedBufferPool>));
        services.AddSingleton<Silo>();
        services.AddSingleton<IGrainFactory>(sp => sp.GetRequiredService<Silo>().GrainFactory);
        services.AddSingleton<Runtime.ILocalSiloDetails>(sp => new Runtime.LocalSiloDetails(sp.GetRequiredService<Silo>()));
        services.AddSingleton<IClusterResources>(sp => new Runtime.ClusterResources(sp.GetRequiredService<Silo>()));
        services.AddSingleton<LIFL.Diagnostics.ISiloDiagnostics>(sp => new Runtime.Diagnostics.SiloDiagnostics(sp.GetRequiredService<Silo>()));
        services.AddSingleton<IClusterClient>(sp => new EmbeddedClusterClient(sp.GetRequiredService<Silo>().GrainFactory, sp));
        services.AddHostedService<SiloHostedService>();
        PlacementService.AddDefaultDirectors(services);
        StreamServices.AddCore(services);

        configure?.Invoke(new SiloBuilder(services, configuration));
    }

    /// <summary>The process's part of the node's dataplane (silos and clients): its shared pool, opened on first use.</summary>
    internal static void AddDataplane(IServiceCollection services)
    {
        AddOptions<Runtime.Dataplane.DataplaneOptions, Runtime.Dataplane.DataplaneOptionsValidator>(services, "Dataplane");
        services.TryAddSingleton<Runtime.Dataplane.NodeDataplane>();
        services.TryAddSingleton<Runtime.Dataplane.INodeDataplane>(sp => sp.GetRequiredService<Runtime.Dataplane.NodeDataplane>());
        // The container disposes what it hands out: its own lease, apart from the dataplane's.
        services.TryAddSingleton(sp => sp.GetRequiredService<Runtime.Dataplane.NodeDataplane>().Pool?.AddLease()
            ?? throw new InvalidOperationException(
                $"This process has no shared pool (Lifl:Dataplane:Enabled is false, or pool {sp.GetRequiredService<Runtime.Dataplane.NodeDataplane>().PoolName} could not be opened: see the log)."));
    }

    internal static void AddOptions<TOptions, TValidator>(IServiceCollection services, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddOptions<TOptions>().BindConfiguration($"{ConfigurationSection}:{section}").ValidateOnStart();
        services.AddSingleton<IValidateOptions<TOptions>, TValidator>();
    }

    /// <summary>One process, in-memory membership, directory and storage back end (the embedded default).</summary>
    public static ISiloBuilder UseLocalhostClustering(this ISiloBuilder builder) => builder;

    /// <summary>
    /// Silos talk over TCP: this silo listens on <paramref name="siloPort"/> for silos and on
    /// <paramref name="gatewayPort"/> for clients (0: a free port; -1: no gateway), on loopback unless
    /// <see cref="EndpointOptions.ListenAddress"/> says otherwise. Every connection proves the cluster secret.
    /// </summary>
    public static ISiloBuilder UseTcpEndpoints(this ISiloBuilder builder, int siloPort = EndpointOptions.DefaultSiloPort, int gatewayPort = EndpointOptions.DefaultGatewayPort, Action<EndpointOptions>? configure = null)
    {
        builder.Services.Configure<EndpointOptions>(o =>
        {
            o.Enabled = true;
            o.SiloPort = siloPort;
            o.GatewayPort = gatewayPort;
            configure?.Invoke(o);
        });
        return builder;
    }

    /// <summary>Hosts the grain classes of <paramref name="assembly"/> (assemblies referenced by the app are found without this).</summary>
    public static ISiloBuilder AddApplicationPart(this ISiloBuilder builder, Assembly assembly)
    {
        builder.Services.AddSingleton(new ApplicationPartRegistration(assembly));
        return builder;
    }

    public static ISiloBuilder Configure<TOptions>(this ISiloBuilder builder, Action<TOptions> configure)
        where TOptions : class
    {
        builder.Services.Configure(configure);
        return builder;
    }

    /// <summary>Grain state kept in memory (lost when the process exits).</summary>
    public static ISiloBuilder AddMemoryGrainStorage(this ISiloBuilder builder, string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        builder.Services.AddKeyedSingleton<IGrainStorage>(name, (sp, _) => new MemoryGrainStorage(name, sp.GetRequiredService<InProcessClusterFabric>().Storage));
        return builder;
    }

    public static ISiloBuilder AddMemoryGrainStorageAsDefault(this ISiloBuilder builder) =>
        builder.AddMemoryGrainStorage(GrainStorageResolver.DefaultName);

    /// <summary>Registers the director that places grain classes using <typeparamref name="TStrategy"/>.</summary>
    public static ISiloBuilder AddPlacementDirector<TStrategy, TDirector>(this ISiloBuilder builder)
        where TStrategy : PlacementStrategy
        where TDirector : class, IPlacementDirector
    {
        builder.Services.AddSingleton<TDirector>();
        builder.Services.AddSingleton(new PlacementDirectorRegistration(typeof(TStrategy), sp => sp.GetRequiredService<TDirector>()));
        return builder;
    }

    /// <summary>An in-memory stream provider: events are delivered to subscribers directly as grain calls.</summary>
    public static ISiloBuilder AddMemoryStreams(this ISiloBuilder builder, string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        builder.Services.AddKeyedSingleton<IStreamProvider>(name, (sp, _) => new MemoryStreamProvider(name, sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<Silo>().Registry));
        builder.Services.AddSingleton(new StreamProviderRegistration(name));
        if (!builder.Services.Any(d => d.IsKeyedService && Equals(d.ServiceKey, PubSubRendezvousGrain.StorageName) && d.ServiceType == typeof(IGrainStorage)))
        {
            builder.AddMemoryGrainStorage(PubSubRendezvousGrain.StorageName);
        }

        return builder;
    }

    private sealed class NoValidation<T> : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options) => ValidateOptionsResult.Success;
    }
}

/// <summary>Starts and stops the silo with the host.</summary>
internal sealed class SiloHostedService(Silo silo) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => silo.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => silo.StopAsync(cancellationToken);
}

/// <summary>The <see cref="IClusterClient"/> of code running in the silo's own host.</summary>
internal sealed class EmbeddedClusterClient(IGrainFactory factory, IServiceProvider services) : DelegatingClusterClient
{
    protected override IGrainFactory Factory => factory;

    public override IServiceProvider ServiceProvider => services;
}
