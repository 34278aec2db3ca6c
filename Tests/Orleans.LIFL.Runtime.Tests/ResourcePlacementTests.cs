using System.Net;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime.Placement;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>The resource-aware placement director: scores from reported CPU, memory and activation counts.</summary>
public sealed class ResourcePlacementTests
{
    private static readonly SiloAddress A = new(new IPEndPoint(IPAddress.Loopback, 1), 1);
    private static readonly SiloAddress B = new(new IPEndPoint(IPAddress.Loopback, 2), 1);
    private static readonly SiloAddress C = new(new IPEndPoint(IPAddress.Loopback, 3), 1);
    private static readonly PlacementTarget Target = new(GrainId.Create(new GrainType("t"), "k"), typeof(ResourcePlacedGrain), null);

    private static SiloRuntimeStatistics Stats(double cpu, long usedMb, long freeMb, int activations) =>
        new(activations, cpu, usedMb << 20, freeMb << 20, DateTime.UtcNow);

    private static Task<SiloAddress> Place(SiloAddress local, Dictionary<SiloAddress, SiloRuntimeStatistics?> statistics) =>
        new ResourceOptimizedPlacementDirector(new ResourceOptimizedPlacementOptions())
            .OnAddActivation(ResourceOptimizedPlacement.Singleton, Target, new FakeContext(local, statistics));

    /// <summary>The silo with spare CPU and memory wins over busier ones, whoever asks.</summary>
    [Fact]
    public async Task Least_loaded_silo_wins()
    {
        var statistics = new Dictionary<SiloAddress, SiloRuntimeStatistics?>
        {
            [A] = Stats(cpu: 90, usedMb: 900, freeMb: 100, activations: 10),
            [B] = Stats(cpu: 10, usedMb: 100, freeMb: 900, activations: 10),
            [C] = Stats(cpu: 50, usedMb: 500, freeMb: 500, activations: 10),
        };
        Assert.Equal(B, await Place(A, statistics));
        Assert.Equal(B, await Place(C, statistics));
    }

    /// <summary>Among equally loaded silos the local one is chosen (no needless hop).</summary>
    [Fact]
    public async Task Ties_prefer_the_local_silo()
    {
        var same = Stats(cpu: 30, usedMb: 300, freeMb: 700, activations: 5);
        var statistics = new Dictionary<SiloAddress, SiloRuntimeStatistics?> { [A] = same, [B] = same, [C] = same };
        Assert.Equal(C, await Place(C, statistics));
    }

    /// <summary>
    /// A silo that has not reported is scored as the average of the others: never preferred over an idler silo
    /// (not flooded), and a full candidate when the others are alike (not starved).
    /// </summary>
    [Fact]
    public async Task Silent_silo_is_scored_as_average()
    {
        var statistics = new Dictionary<SiloAddress, SiloRuntimeStatistics?>
        {
            [A] = Stats(cpu: 80, usedMb: 800, freeMb: 200, activations: 100),
            [B] = null,
            [C] = Stats(cpu: 5, usedMb: 50, freeMb: 950, activations: 1),
        };
        Assert.Equal(C, await Place(B, statistics));

        statistics[C] = statistics[A];
        Assert.Equal(B, await Place(B, statistics));
    }

    /// <summary>In a cluster the director reads the silos' live figures: a silo full of activations gets none of the new ones.</summary>
    [Fact]
    public async Task Cluster_places_away_from_the_busy_silo()
    {
        await using var cluster = await TestClusters.StartAsync(silos: 2);
        var busy = cluster.Silos[0];
        await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => busy.GrainFactory.GetGrain<ILocalPlacedGrain>(TestClusters.Key()).Silo()));

        var placed = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => busy.GrainFactory.GetGrain<IResourcePlacedGrain>(TestClusters.Key()).Silo()));
        Assert.All(placed, silo => Assert.Equal(cluster.Silos[1].Address.ToString(), silo));
    }

    private sealed class FakeContext(SiloAddress local, Dictionary<SiloAddress, SiloRuntimeStatistics?> statistics) : IPlacementContext
    {
        public SiloAddress LocalSilo => local;

        public IReadOnlyList<SiloAddress> GetCompatibleSilos(PlacementTarget target) => [.. statistics.Keys];

        public SiloRuntimeStatistics? GetSiloStatistics(SiloAddress silo) => statistics[silo];
    }
}
