using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Runtime.Messaging;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>The built-in placement directors and a custom one, on a three-silo cluster.</summary>
public sealed class PlacementTests : IAsyncLifetime
{
    private TestingHost.InProcessTestCluster _cluster = null!;

    /// <summary>Directory lookups and registrations per grain, all silos together.</summary>
    private readonly ConcurrentDictionary<GrainId, int> _directoryUse = new();

    public async ValueTask InitializeAsync() =>
        _cluster = await TestClusters.StartAsync(silos: 3, configure: silo =>
        {
            silo.AddPlacementDirector<LastSiloPlacement, LastSiloPlacementDirector>();
            silo.Services.AddSingleton<IGrainDirectory>(sp => new CountingDirectory(sp.GetRequiredService<InProcessClusterFabric>().Directory, _directoryUse));
        });

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

    /// <summary>
    /// A strategy that does without the directory: every call, from any silo or the client, reaches the one activation
    /// on the silo its director names, which is never registered or looked up; a grain naming no active silo fails at once.
    /// </summary>
    [Fact]
    public async Task A_strategy_without_the_directory_routes_every_call_by_its_director()
    {
        var named = _cluster.Silos.Select(s => s.Address).Order().ElementAt(1);
        var key = $"1/{TestClusters.Key()}";
        var calls = new List<int>();
        foreach (var silo in _cluster.Silos)
        {
            calls.Add(await silo.GrainFactory.GetGrain<IKeyNamedGrain>(key).Next());
        }

        var grain = _cluster.Client.GetGrain<IKeyNamedGrain>(key);
        calls.Add(await grain.Next());

        Assert.Equal([1, 2, 3, 4], calls);
        Assert.Equal(named.ToString(), await grain.Silo());
        Assert.Single(_cluster.Silos, s => s.Silo.Catalog.TryGet(grain.GetGrainId(), out _));
        Assert.Equal(0, _directoryUse.GetValueOrDefault(grain.GetGrainId()));

        // The same calls to a grain of a directory-using strategy do use it: the counter is not blind.
        var hashed = TestClusters.Key();
        foreach (var silo in _cluster.Silos)
        {
            await silo.GrainFactory.GetGrain<IHashPlacedGrain>(hashed).Silo();
        }

        Assert.True(_directoryUse.GetValueOrDefault(_cluster.Client.GetGrain<IHashPlacedGrain>(hashed).GetGrainId()) > 0);

        var error = await Assert.ThrowsAsync<SiloUnavailableException>(() => _cluster.Client.GetGrain<IKeyNamedGrain>($"7/{TestClusters.Key()}").Next());
        Assert.Contains("names silo 7", error.Message, StringComparison.Ordinal);
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

/// <summary>Counts the directory operations on each grain, then does them on the cluster's directory.</summary>
internal sealed class CountingDirectory(IGrainDirectory inner, ConcurrentDictionary<GrainId, int> uses) : IGrainDirectory
{
    public ValueTask<GrainAddress> Register(GrainAddress address, Func<SiloAddress, bool> isSiloDead)
    {
        uses.AddOrUpdate(address.GrainId, 1, (_, n) => n + 1);
        return inner.Register(address, isSiloDead);
    }

    public ValueTask<GrainAddress?> Lookup(GrainId grainId)
    {
        uses.AddOrUpdate(grainId, 1, (_, n) => n + 1);
        return inner.Lookup(grainId);
    }

    public ValueTask Unregister(GrainAddress address) => inner.Unregister(address);

    public ValueTask UnregisterSilos(IReadOnlyCollection<SiloAddress> silos) => inner.UnregisterSilos(silos);
}
