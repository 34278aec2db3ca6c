using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Client.MoE;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.MoE;
using Orleans.LIFL.Grains.MoE.Model;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.TestingHost;

namespace Orleans.LIFL.MoE.Tests.Grains;

/// <summary>An in-process cluster serving a small seeded MoE model, and the reference decoding of the same model in this process.</summary>
internal sealed class MoeTestBed : IAsyncDisposable
{
    public static readonly MoeConfig Config = new() { Layers = 2, ModelDim = 32, Heads = 4, Experts = 4, TopK = 2, FeedForwardDim = 48, MaxSequence = 128 };

    /// <summary>Large enough that a generation of a hundred tokens outlasts a silo being killed after the first few.</summary>
    public static readonly MoeConfig SlowConfig = new() { Layers = 4, ModelDim = 128, Heads = 4, Experts = 4, TopK = 2, FeedForwardDim = 384, MaxSequence = 256 };

    public const ulong Seed = 7;

    private MoeTestBed(InProcessTestCluster cluster)
    {
        Cluster = cluster;
        Client = new MoeClient(cluster.Client);
    }

    public InProcessTestCluster Cluster { get; }

    public MoeClient Client { get; }

    /// <summary>The node's shared pool the silos (and this process's client) use.</summary>
    public SharedBufferPool Pool => Cluster.Silos[0].Services.GetRequiredService<SharedBufferPool>();

    public static async Task<MoeTestBed> StartAsync(int silos = 3, bool dataplane = true)
    {
        var pool = "m" + Guid.NewGuid().ToString("N")[..12];
        var cluster = await InProcessTestCluster.StartAsync(options =>
        {
            options.InitialSilosCount = silos;
            options.ConfigureSilo = silo => silo.AddMemoryGrainStorageAsDefault().Configure<DataplaneOptions>(d => (d.PoolName, d.Enabled) = (pool, dataplane));
        });
        return new MoeTestBed(cluster);
    }

    public static MoeDeploymentSpec Spec(RecoveryMode recovery = RecoveryMode.Reroute) => new()
    {
        Config = Config,
        Seed = Seed,
        Shadows = recovery == RecoveryMode.Reroute ? 1 : 0,
        Recovery = recovery,
        Checkpointing = recovery == RecoveryMode.Reroute,
    };

    public static string NewName(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    /// <summary>The decoding of <paramref name="prompt"/> in this process, every expert run locally.</summary>
    public static int[] Reference(int[] prompt, int tokens, float temperature = 0, ulong seed = 0, MoeConfig? config = null) =>
        new MoeModel(MoeWeights.Random(config ?? Config, Seed)).Generate(prompt, tokens, new Sampling(temperature, seed));

    public async ValueTask DisposeAsync() => await Cluster.DisposeAsync();
}
