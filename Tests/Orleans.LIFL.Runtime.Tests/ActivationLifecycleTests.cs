using Orleans.LIFL.Configuration;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>Activation on demand, single activation, deactivation and idle collection (on a manual clock).</summary>
public sealed class ActivationLifecycleTests : IAsyncLifetime
{
    private static readonly TimeSpan Age = TimeSpan.FromMinutes(10);
    private readonly ManualTimeProvider _time = new();
    private TestingHost.InProcessTestCluster _cluster = null!;

    public async ValueTask InitializeAsync() =>
        _cluster = await TestClusters.StartAsync(
            silos: 1,
            configure: silo => silo.Configure<GrainCollectionOptions>(o =>
            {
                o.CollectionAge = Age;
                o.CollectionQuantum = TimeSpan.FromMinutes(1);
                o.ClassSpecificCollectionAge[typeof(ConfiguredAgeGrain).FullName!] = TimeSpan.FromMinutes(3);
            }),
            time: _time);

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    private ActivationData Activation(IAddressable grain)
    {
        Assert.True(_cluster.Silos[0].Silo.Catalog.TryGet(grain.GetGrainId(), out var activation), $"{grain} is not active");
        return activation;
    }

    private bool IsActive(IAddressable grain) => _cluster.Silos[0].Silo.Catalog.TryGet(grain.GetGrainId(), out _);

    /// <summary>100 concurrent first calls to one grain create exactly one activation, and every call reaches it.</summary>
    [Fact]
    public async Task Concurrent_first_calls_create_one_activation()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<ILifecycleGrain>(key);
        var ids = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => Task.Run(() => grain.ActivationId())));
        Assert.Single(ids.Distinct());
        Assert.Equal(1, Signals.Count($"{key}/activations"));
    }

    /// <summary>DeactivateOnIdle runs OnDeactivateAsync after the call; the next call reactivates, running OnActivateAsync again.</summary>
    [Fact]
    public async Task Deactivate_on_idle_then_reactivate()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<ILifecycleGrain>(key);
        var first = await grain.ActivationId();
        await grain.Deactivate();
        await Signals.WaitAsync($"{key}/deactivated/{DeactivationReasonCode.ApplicationRequested}");

        var second = await grain.ActivationId();
        Assert.NotEqual(first, second);
        Assert.Equal(2, Signals.Count($"{key}/activations"));
        Assert.Equal(1, Signals.Count($"{key}/deactivations"));
    }

    /// <summary>An idle activation is collected after its collection age, not before, and comes back on the next call.</summary>
    [Fact]
    public async Task Idle_activation_is_collected_after_its_age()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<ILifecycleGrain>(key);
        await grain.ActivationId();

        _time.Advance(Age - TimeSpan.FromMinutes(1));
        Assert.Equal(ActivationState.Valid, Activation(grain).State);

        _time.Advance(TimeSpan.FromMinutes(2));
        await Signals.WaitAsync($"{key}/deactivated/{DeactivationReasonCode.ActivationIdle}");

        await grain.ActivationId();
        Assert.Equal(2, Signals.Count($"{key}/activations"));
    }

    /// <summary>Calls keep an activation alive: the idle clock restarts with every call.</summary>
    [Fact]
    public async Task Calls_keep_an_activation_alive()
    {
        var grain = _cluster.Client.GetGrain<ILifecycleGrain>(TestClusters.Key());
        for (var i = 0; i < 5; i++)
        {
            await grain.ActivationId();
            _time.Advance(Age - TimeSpan.FromMinutes(2));
        }

        Assert.Equal(ActivationState.Valid, Activation(grain).State);
    }

    /// <summary>Collection age per class: [CollectionAgeLimit], the options' per-class table, and [KeepAlive].</summary>
    [Fact]
    public async Task Collection_age_is_configurable_per_class()
    {
        var defaultGrain = _cluster.Client.GetGrain<ILifecycleGrain>(TestClusters.Key());
        var longLived = _cluster.Client.GetGrain<ILongLivedGrain>(TestClusters.Key());
        var configured = _cluster.Client.GetGrain<IConfiguredAgeGrain>(TestClusters.Key());
        var pinned = _cluster.Client.GetGrain<IPinnedGrain>(TestClusters.Key());
        await Task.WhenAll(defaultGrain.ActivationId(), longLived.ActivationId(), configured.ActivationId(), pinned.ActivationId());

        _time.Advance(TimeSpan.FromMinutes(4));
        await Signals.WaitAsync($"{configured.GetPrimaryKeyString()}/deactivated#1");
        Assert.Equal(ActivationState.Valid, Activation(defaultGrain).State);

        _time.Advance(TimeSpan.FromMinutes(7));
        await Signals.WaitAsync($"{defaultGrain.GetPrimaryKeyString()}/deactivated#1");
        Assert.Equal(ActivationState.Valid, Activation(longLived).State);

        _time.Advance(TimeSpan.FromMinutes(50));
        await Signals.WaitAsync($"{longLived.GetPrimaryKeyString()}/deactivated#1");

        _time.Advance(TimeSpan.FromDays(30));
        Assert.Equal(ActivationState.Valid, Activation(pinned).State);
    }

    /// <summary>DelayDeactivation keeps an idle activation for the requested time even past its collection age.</summary>
    [Fact]
    public async Task Delay_deactivation_postpones_collection()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<ILifecycleGrain>(key);
        await grain.DelayDeactivation(TimeSpan.FromMinutes(30));

        _time.Advance(TimeSpan.FromMinutes(20));
        Assert.Equal(ActivationState.Valid, Activation(grain).State);

        _time.Advance(TimeSpan.FromMinutes(12));
        await Signals.WaitAsync($"{key}/deactivated/{DeactivationReasonCode.ActivationIdle}");
    }

    /// <summary>When OnActivateAsync throws, the caller gets that exception, the activation is discarded, and the next call tries again.</summary>
    [Fact]
    public async Task Failed_activation_is_discarded_and_retried()
    {
        var key = TestClusters.Key("once-");
        var grain = _cluster.Client.GetGrain<IFailingActivationGrain>(key);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => grain.Attempts());
        Assert.Contains("refused (attempt 1)", error.Message, StringComparison.Ordinal);
        Assert.False(IsActive(grain));

        Assert.Equal(2, await grain.Attempts());
    }

    /// <summary>Every call waiting for an activation that fails gets the activation's exception.</summary>
    [Fact]
    public async Task Calls_waiting_for_a_failed_activation_all_fail()
    {
        var grain = _cluster.Client.GetGrain<IFailingActivationGrain>(TestClusters.Key("always-"));
        var calls = Enumerable.Range(0, 10).Select(_ => grain.Attempts()).ToList();
        foreach (var call in calls)
        {
            await Assert.ThrowsAsync<InvalidOperationException>(() => call);
        }
    }
}
