using Orleans.LIFL.Configuration;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>Grain timers on a manual clock: due time, period, interleaving, keep-alive and disposal.</summary>
public sealed class TimerTests : IAsyncLifetime
{
    private readonly ManualTimeProvider _time = new();
    private TestingHost.InProcessTestCluster _cluster = null!;

    public async ValueTask InitializeAsync() =>
        _cluster = await TestClusters.StartAsync(
            configure: silo => silo.Configure<GrainCollectionOptions>(o =>
            {
                o.CollectionAge = TimeSpan.FromMinutes(10);
                o.CollectionQuantum = TimeSpan.FromMinutes(1);
            }),
            time: _time);

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    private ActivationData Activation(IAddressable grain)
    {
        Assert.True(_cluster.Silos[0].Silo.Catalog.TryGet(grain.GetGrainId(), out var activation));
        return activation;
    }

    /// <summary>The first tick comes at the due time, then one per period.</summary>
    [Fact]
    public async Task Timer_ticks_at_due_time_then_every_period()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<ITimerGrain>(key);
        await grain.StartTimer(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1), interleave: false, keepAlive: false);

        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(0, await grain.Ticks());
        _time.Advance(TimeSpan.FromSeconds(1));
        await Signals.WaitAsync($"{key}/tick#1");

        for (var n = 2; n <= 4; n++)
        {
            // The next tick is armed when the previous one has finished: a call queued behind the tick marks that.
            Assert.Equal(n - 1, await grain.Ticks());
            _time.Advance(TimeSpan.FromSeconds(1));
            await Signals.WaitAsync($"{key}/tick#{n}");
        }

        Assert.Equal(4, await grain.Ticks());
    }

    /// <summary>A non-interleaving tick waits for the running request; it is queued, not run.</summary>
    [Fact]
    public async Task Non_interleaving_tick_waits_for_the_running_request()
    {
        var s = Signals.NewScope();
        var grain = _cluster.Client.GetGrain<ITimerGrain>(s);
        await grain.StartTimer(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan, interleave: false, keepAlive: false);
        var hold = grain.Hold($"{s}/held", $"{s}/release");
        await Signals.WaitAsync($"{s}/held");

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, Activation(grain).WaitingCount);

        Signals.Set($"{s}/release");
        await hold;
        await Signals.WaitAsync($"{s}/tick#1");
        Assert.Equal(["hold-start", "hold-end", "tick"], await grain.Log());
    }

    /// <summary>An interleaving tick runs while a request waits at an await.</summary>
    [Fact]
    public async Task Interleaving_tick_runs_while_a_request_waits()
    {
        var s = Signals.NewScope();
        var grain = _cluster.Client.GetGrain<ITimerGrain>(s);
        await grain.StartTimer(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan, interleave: true, keepAlive: false);
        var hold = grain.Hold($"{s}/held", $"{s}/release");
        await Signals.WaitAsync($"{s}/held");

        _time.Advance(TimeSpan.FromSeconds(1));
        await Signals.WaitAsync($"{s}/tick#1");
        Signals.Set($"{s}/release");
        await hold;
        Assert.Equal(["hold-start", "tick", "hold-end"], await grain.Log());
    }

    /// <summary>Ticks of a keep-alive timer count as activity: the grain outlives its collection age with no calls.</summary>
    [Fact]
    public async Task Keep_alive_ticks_prevent_collection()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<ITimerGrain>(key);
        await grain.StartTimer(TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1), interleave: false, keepAlive: true);
        var armed = _time.ActiveTimers;

        // No grain calls from here on (a call is activity): follow ticks and re-arming through the clock instead.
        for (var minute = 1; minute <= 15; minute++)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
            await Signals.WaitAsync($"{key}/tick#{minute}");
            await _time.WhenArmedTimers(armed).WithPatience();
        }

        Assert.Equal(ActivationState.Valid, Activation(grain).State);
        Assert.Equal(0, Signals.Count($"{key}/deactivations"));
    }

    /// <summary>Ticks of an ordinary timer are not activity: the grain is collected at its age although the timer ticks.</summary>
    [Fact]
    public async Task Ordinary_ticks_do_not_prevent_collection()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<ITimerGrain>(key);
        await grain.StartTimer(TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1), interleave: false, keepAlive: false);
        var armed = _time.ActiveTimers;
        var collected = Signals.WaitAsync($"{key}/deactivated/{DeactivationReasonCode.ActivationIdle}");

        var minute = 0;
        while (!collected.IsCompleted)
        {
            Assert.True(++minute <= 12, "the grain was not collected within two quanta of its age");
            _time.Advance(TimeSpan.FromMinutes(1));
            await Task.WhenAny(Signals.WaitAsync($"{key}/tick#{minute}"), collected);
            await Task.WhenAny(_time.WhenArmedTimers(armed), collected).WithPatience();
        }

        await collected;
        Assert.InRange(minute, 10, 12);
        Assert.True(Signals.IsSet($"{key}/tick#9"), "the timer did not tick while the grain lived");
    }

    /// <summary>Deactivation disposes the grain's timers: nothing is left to fire.</summary>
    [Fact]
    public async Task Timers_stop_on_deactivation()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<ITimerGrain>(key);
        var before = _time.ActiveTimers;
        await grain.StartTimer(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), interleave: false, keepAlive: true);
        Assert.Equal(before + 1, _time.ActiveTimers);
        _time.Advance(TimeSpan.FromSeconds(1));
        await Signals.WaitAsync($"{key}/tick#1");

        await grain.Deactivate();
        await Signals.WaitAsync($"{key}/deactivated#1");
        Assert.Equal(before, _time.ActiveTimers);

        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(1, Signals.Count($"{key}/activations"));
        Assert.False(Signals.IsSet($"{key}/tick#2"));
    }

    /// <summary>Disposing a timer from grain code stops it.</summary>
    [Fact]
    public async Task Disposed_timer_stops()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<ITimerGrain>(key);
        var before = _time.ActiveTimers;
        await grain.StartTimer(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), interleave: false, keepAlive: false);
        await grain.StopTimer();
        Assert.Equal(before, _time.ActiveTimers);
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(0, await grain.Ticks());
    }
}
