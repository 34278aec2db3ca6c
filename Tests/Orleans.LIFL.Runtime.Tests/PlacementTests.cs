using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>The built-in placement directors and a custom one, on a three-silo cluster.</summary>
public sealed class PlacementTests : IAsyncLifetime
{
    private TestingHost.InProcessTestCluster _cluster = null!;

    public async ValueTask InitializeAsync() =>
        _cluster = await TestClusters.StartAsync(silos: 3, configure: silo => silo.AddPlacementDirector<LastSiloPlacement, LastSiloPlacementDirector>());

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    /// <summary>A strategy naming its director with [PlacementDirector] is placed by it without any registration.</summary>
    [Fact]
    public async Task A_strategy_can_bring_its_own_director()
    {
        var first = _cluster.Silos.Select(s => s.Address).Order().First().ToString();
        foreach (var silo in _cluster.Silos)
        {
            Assert.Equal(first, await silo.GrainFactory.GetGrain<ISelfDirectedGrain>(TestClusters.Key()).Silo());
        }
    }

    /// <summary>Every silo sees every active silo with its node, cores, CPU time and peak memory (what LIFL's planner reads).</summary>
    [Fact]
    public void Cluster_resources_describe_every_silo()
    {
        var resources = _cluster.Silos[0].Services.GetRequiredService<IClusterResources>();
        var silos = resources.ActiveSilos();
        Assert.Equal(_cluster.Silos.Select(s => s.Address).Order(), silos.Select(s => s.Silo).Order());
        Assert.All(silos, s =>
        {
            Assert.NotNull(s.Statistics);
            Assert.Equal(Environment.ProcessorCount, s.Statistics.ProcessorCount);
            Assert.False(string.IsNullOrEmpty(s.Statistics.NodeId));
            Assert.True(s.Statistics.CpuSeconds > 0 && s.Statistics.PeakMemoryBytes > s.Statistics.MemoryUsageBytes / 2);
        });
        Assert.Single(silos.Select(s => s.Statistics!.NodeId).Distinct());
    }

    /// <summary>Random placement uses every silo.</summary>
    [Fact]
    public async Task Random_placement_spreads_over_all_silos()
    {
        var silos = await Task.WhenAll(Enumerable.Range(0, 150).Select(i => _cluster.Client.GetGrain<IRandomPlacedGrain>(TestClusters.Key()).Silo()));
        Assert.Equal(3, silos.Distinct().Count());
    }

    /// <summary>Prefer-local placement activates the grain on the silo the call entered through.</summary>
    [Fact]
    public async Task Prefer_local_places_on_the_calling_silo()
    {
        foreach (var silo in _cluster.Silos)
        {
            var grain = silo.GrainFactory.GetGrain<ILocalPlacedGrain>(TestClusters.Key());
            Assert.Equal(silo.Address.ToString(), await grain.Silo());
        }
    }

    /// <summary>Hash-based placement picks sorted-silos[stable hash mod count], whichever silo makes the call.</summary>
    [Fact]
    public async Task Hash_placement_is_deterministic()
    {
        var sorted = _cluster.Silos.Select(s => s.Address).OrderBy(a => a).ToArray();
        for (var i = 0; i < 20; i++)
        {
            var entry = _cluster.Silos[i % 3];
            var grain = entry.GrainFactory.GetGrain<IHashPlacedGrain>(TestClusters.Key());
            var expected = sorted[grain.GetGrainId().GetStableHashCode() % (uint)sorted.Length];
            Assert.Equal(expected.ToString(), await grain.Silo());
        }
    }

    /// <summary>
    /// Activation-count placement (power of two choices) sends new activations to the emptier silo. With two silos
    /// both are always the two choices, so every new activation goes to the emptier one while it stays emptier.
    /// </summary>
    [Fact]
    public async Task Activation_count_placement_prefers_the_emptier_silo()
    {
        await using var cluster = await TestClusters.StartAsync(silos: 2);
        var loaded = cluster.Silos[0];
        var empty = cluster.Silos[1];
        await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => loaded.GrainFactory.GetGrain<ILocalPlacedGrain>(TestClusters.Key()).Silo()));

        var placed = await Task.WhenAll(Enumerable.Range(0, 60).Select(_ => cluster.Client.GetGrain<ICountPlacedGrain>(TestClusters.Key()).Silo()));
        Assert.All(placed, silo => Assert.Equal(empty.Address.ToString(), silo));
        Assert.Equal(60, empty.ActivationCount);
    }

    /// <summary>A custom strategy attribute and its registered director decide placement.</summary>
    [Fact]
    public async Task Custom_director_decides()
    {
        var last = _cluster.Silos.Select(s => s.Address).OrderBy(a => a).Last();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(last.ToString(), await _cluster.Client.GetGrain<ICustomPlacedGrain>(TestClusters.Key()).Silo());
        }
    }

    /// <summary>A strategy with no registered director fails with an error naming the strategy.</summary>
    [Fact]
    public async Task Strategy_without_director_is_reported()
    {
        await using var plain = await TestClusters.StartAsync();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => plain.Client.GetGrain<ICustomPlacedGrain>("x").Silo());
        Assert.Contains(nameof(LastSiloPlacement), error.Message, StringComparison.Ordinal);
    }
}
