using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Client;
using Orleans.LIFL.Runtime.Core;
using Orleans.LIFL.Runtime.MembershipService;
using Orleans.LIFL.Runtime.Messaging;

namespace Orleans.LIFL.TestingHost;

/// <summary>Settings of an <see cref="InProcessTestCluster"/>.</summary>
public sealed class InProcessTestClusterOptions
{
    public int InitialSilosCount { get; set; } = 2;

    /// <summary>Applied to every silo (storage, streams, options, services grains need).</summary>
    public Action<ISiloBuilder>? ConfigureSilo { get; set; }

    /// <summary>Logging of every silo; warnings and up to the console by default.</summary>
    public Action<ILoggingBuilder>? ConfigureLogging { get; set; }

    /// <summary>Settings of the cluster client.</summary>
    public Action<MessagingOptions>? ConfigureClientMessaging { get; set; }

    /// <summary>
    /// When set, the silos talk to each other over real TCP connections on loopback (free ports, this secret),
    /// keeping the in-memory membership table, directory and storage; clients can then connect through
    /// <see cref="InProcessTestCluster.GatewayEndpoints"/>.
    /// </summary>
    public string? TcpSecret { get; set; }
}

/// <summary>
/// Several silos in one process sharing an in-memory membership table, directory and storage, with a client that
/// enters through any of them. Silos can be added, stopped gracefully, or killed as a crash would kill them.
/// </summary>
public sealed class InProcessTestCluster : IAsyncDisposable
{
    private static readonly TimeSpan DisposeGracePeriod = TimeSpan.FromSeconds(2);
    private readonly InProcessClusterFabric _fabric = new();
    private readonly InProcessTestClusterOptions _options;
    private readonly List<InProcessSiloHandle> _silos = [];
    private readonly Lock _lock = new();
    private ClusterClient? _client;

    private InProcessTestCluster(InProcessTestClusterOptions options)
    {
        _options = options;
    }

    public static async Task<InProcessTestCluster> StartAsync(Action<InProcessTestClusterOptions>? configure = null)
    {
        var options = new InProcessTestClusterOptions();
        configure?.Invoke(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.InitialSilosCount, 1);
        var cluster = new InProcessTestCluster(options);
        try
        {
            for (var i = 0; i < options.InitialSilosCount; i++)
            {
                await cluster.StartAdditionalSiloAsync();
            }
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }

        return cluster;
    }

    /// <summary>The silos that are running.</summary>
    public IReadOnlyList<InProcessSiloHandle> Silos
    {
        get
        {
            lock (_lock)
            {
                return _silos.Where(s => s.IsAlive).ToList();
            }
        }
    }

    /// <summary>A client outside the silos (created on first use).</summary>
    public IClusterClient Client
    {
        get
        {
            lock (_lock)
            {
                if (_client is null)
                {
                    var first = _silos.FirstOrDefault(s => s.IsAlive) ?? throw new InvalidOperationException("No silo is running.");
                    var messaging = new MessagingOptions();
                    _options.ConfigureClientMessaging?.Invoke(messaging);
                    var client = new ClusterClient(CreateInProcessTransport(), messaging, first.Services.GetRequiredService<ILoggerFactory>(), TimeProvider.System);
                    client.ConnectAsync(CancellationToken.None).GetAwaiter().GetResult();
                    _client = client;
                }

                return _client;
            }
        }
    }

    internal InProcessClusterFabric Fabric => _fabric;

    /// <summary>The gateway endpoints of the running silos (TCP clusters only).</summary>
    public IReadOnlyList<string> GatewayEndpoints =>
        Silos.Select(s => s.Silo.GatewayEndpoint?.ToString()).OfType<string>().ToList();

    internal InProcessClientTransport CreateInProcessTransport() =>
        new(_fabric, () =>
        {
            var silo = Silos.FirstOrDefault() ?? throw new InvalidOperationException("No silo is running.");
            return ClusterManifest.From(silo.Silo.Registry, silo.Silo.StreamProviderNames);
        });

    /// <param name="configure">Applied to this silo only, after <see cref="InProcessTestClusterOptions.ConfigureSilo"/>.</param>
    public async Task<InProcessSiloHandle> StartAdditionalSiloAsync(Action<ISiloBuilder>? configure = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddSingleton(_fabric);
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        _options.ConfigureLogging?.Invoke(builder.Logging);
        builder.UseLiflSilo(silo =>
        {
            if (_options.TcpSecret is { } secret)
            {
                silo.UseTcpEndpoints(siloPort: 0, gatewayPort: 0);
                silo.Configure<ClusterOptions>(o => o.Secret = secret);
            }

            _options.ConfigureSilo?.Invoke(silo);
            configure?.Invoke(silo);
        });
        var host = builder.Build();
        await host.StartAsync();
        var handle = new InProcessSiloHandle(host);
        lock (_lock)
        {
            _silos.Add(handle);
        }

        return handle;
    }

    /// <summary>Stops a silo gracefully: its activations run OnDeactivateAsync, then it leaves the cluster.</summary>
    public async Task StopSiloAsync(InProcessSiloHandle silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        await silo.Host.StopAsync();
        silo.Host.Dispose();
    }

    /// <summary>
    /// Kills a silo as a crash would: no grain code runs, calls it was serving fail at once, and a surviving silo
    /// declares it dead in the membership table (what the failure detector does across processes).
    /// </summary>
    public async Task KillSiloAsync(InProcessSiloHandle silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        silo.Silo.Kill();
        if (_options.TcpSecret is not null)
        {
            // Over TCP the survivors' failure detector finds out by itself.
            silo.Host.Dispose();
            return;
        }

        var survivor = Silos.FirstOrDefault(s => s != silo);
        if (survivor is not null)
        {
            await survivor.Silo.Membership.DeclareDeadAsync(silo.Address);
        }
        else
        {
            await new MembershipTableManager(_fabric.Membership, Microsoft.Extensions.Logging.Abstractions.NullLogger<MembershipTableManager>.Instance)
                .DeclareDeadAsync(silo.Address);
        }

        silo.Host.Dispose();
    }

    /// <summary>The silo whose catalog holds an activation of <paramref name="grain"/>, if any.</summary>
    public InProcessSiloHandle? FindSiloHosting(IAddressable grain)
    {
        var grainId = grain.GetGrainId();
        return Silos.FirstOrDefault(s => s.Silo.Catalog.TryGet(grainId, out _));
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        // Graceful, but bounded: a test may leave requests that never finish, which would hold deactivation for
        // the full DeactivationTimeout. Whatever is left after the grace period is killed.
        await Task.WhenAll(Silos.Select(async silo =>
        {
            try
            {
                using var grace = new CancellationTokenSource(DisposeGracePeriod);
                await silo.Host.StopAsync(grace.Token);
            }
            finally
            {
                silo.Silo.Kill();
                silo.Host.Dispose();
            }
        }));
        _fabric.Dispose();
    }
}

/// <summary>One silo of an <see cref="InProcessTestCluster"/>.</summary>
public sealed class InProcessSiloHandle
{
    internal InProcessSiloHandle(IHost host)
    {
        Host = host;
        Silo = host.Services.GetRequiredService<Silo>();
    }

    internal IHost Host { get; }

    internal Silo Silo { get; }

    public SiloAddress Address => Silo.Address;

    public IServiceProvider Services => Host.Services;

    /// <summary>The silo's own grain factory: calls made through it enter the cluster at this silo.</summary>
    public IGrainFactory GrainFactory => Silo.GrainFactory;

    public bool IsAlive => Silo.Status is SiloStatus.Active or SiloStatus.Joining;

    /// <summary>Activations on this silo now (stateless workers included).</summary>
    public int ActivationCount => Silo.Catalog.Count;

    public override string ToString() => Address.ToString();
}

public static class TestClusterClientExtensions
{
    /// <summary>Connects a UseLiflClient host to the silos of an in-process test cluster.</summary>
    public static IClientBuilder UseInProcessTestCluster(this IClientBuilder builder, InProcessTestCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(cluster);
        builder.Services.AddSingleton(new ClientConnection(_ => cluster.CreateInProcessTransport()));
        return builder;
    }
}
