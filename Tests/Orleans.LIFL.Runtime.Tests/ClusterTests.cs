using Orleans.LIFL.Configuration;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>Several silos in one process: one activation cluster-wide, and recovery when a silo stops or dies.</summary>
public sealed class ClusterTests
{
    /// <summary>100 concurrent first calls, entering through different gateways of a 3-silo cluster, still create one activation.</summary>
    [Fact]
    public async Task One_activation_cluster_wide_under_concurrent_first_calls()
    {
        await using var cluster = await TestClusters.StartAsync(silos: 3);
        for (var round = 0; round < 5; round++)
        {
            var key = TestClusters.Key();
            var ids = await Task.WhenAll(Enumerable.Range(0, 100).Select(i =>
                Task.Run(() => cluster.Silos[i % 3].GrainFactory.GetGrain<ILifecycleGrain>(key).ActivationId())));
            Assert.Single(ids.Distinct());
            Assert.Equal(1, Signals.Count($"{key}/activations"));
            Assert.Single(cluster.Silos, s => s.Silo.Catalog.TryGet(cluster.Client.GetGrain<ILifecycleGrain>(key).GetGrainId(), out _));
        }
    }

    /// <summary>After a silo is killed, its grains reactivate on the surviving silos at their next call.</summary>
    [Fact]
    public async Task Killed_silo_grains_reactivate_elsewhere()
    {
        await using var cluster = await TestClusters.StartAsync(silos: 3);
        var grains = Enumerable.Range(0, 60).Select(_ => cluster.Client.GetGrain<ILifecycleGrain>(TestClusters.Key())).ToList();
        var before = await Task.WhenAll(grains.Select(g => g.Silo()));
        var victim = cluster.Silos[1];
        var onVictim = grains.Where((g, i) => before[i] == victim.Address.ToString()).ToList();
        Assert.NotEmpty(onVictim);

        await cluster.KillSiloAsync(victim);
        var after = await Task.WhenAll(onVictim.Select(g => g.Silo()));
        Assert.DoesNotContain(victim.Address.ToString(), after);
        foreach (var grain in onVictim)
        {
            Assert.Equal(2, Signals.Count($"{grain.GetPrimaryKeyString()}/activations"));
            Assert.Equal(0, Signals.Count($"{grain.GetPrimaryKeyString()}/deactivations"));
        }

        // Grains on the survivors were not disturbed.
        var survivor = grains.Where((g, i) => before[i] != victim.Address.ToString()).First();
        Assert.Equal(1, Signals.Count($"{survivor.GetPrimaryKeyString()}/activations"));
    }

    /// <summary>A call in progress on a silo that dies fails at once with SiloUnavailableException, not after the call timeout.</summary>
    [Fact]
    public async Task Call_to_a_dying_silo_fails_fast()
    {
        await using var cluster = await TestClusters.StartAsync(
            silos: 2,
            configure: silo => silo.Configure<MessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromMinutes(5)));
        var victim = cluster.Silos[1];
        var s = Signals.NewScope();
        var onVictim = victim.GrainFactory.GetGrain<ILocalGateGrain>(s);
        var running = onVictim.Hold($"{s}/held", $"{s}/never");
        await Signals.WaitAsync($"{s}/held");
        Assert.Same(victim, cluster.FindSiloHosting(onVictim));
        var fromOtherSilo = cluster.Silos[0].GrainFactory.GetGrain<ILocalGateGrain>(s).Normal($"{s}/queued");

        await cluster.KillSiloAsync(victim);
        await Assert.ThrowsAsync<SiloUnavailableException>(() => running.WithPatience());
        await Assert.ThrowsAsync<SiloUnavailableException>(() => fromOtherSilo.WithPatience());
        Assert.False(Signals.IsSet($"{s}/queued"));

        var again = cluster.Client.GetGrain<ILocalGateGrain>(s);
        Assert.Equal("normal", await again.Normal($"{s}/after"));
        Assert.Same(cluster.Silos[0], cluster.FindSiloHosting(again));
    }

    /// <summary>A gracefully stopped silo deactivates its grains (OnDeactivateAsync runs) and they come back elsewhere.</summary>
    [Fact]
    public async Task Stopped_silo_deactivates_its_grains()
    {
        await using var cluster = await TestClusters.StartAsync(silos: 2);
        var leaving = cluster.Silos[1];
        var key = TestClusters.Key();
        var grain = leaving.GrainFactory.GetGrain<ILocalLifecycleGrain>(key);
        Assert.Equal(leaving.Address.ToString(), await grain.Silo());

        await cluster.StopSiloAsync(leaving);
        await Signals.WaitAsync($"{key}/deactivated/{DeactivationReasonCode.ShuttingDown}");

        Assert.Single(cluster.Silos);
        Assert.Equal(cluster.Silos[0].Address.ToString(), await cluster.Client.GetGrain<ILocalLifecycleGrain>(key).Silo());
        Assert.Equal(2, Signals.Count($"{key}/activations"));
    }
}
