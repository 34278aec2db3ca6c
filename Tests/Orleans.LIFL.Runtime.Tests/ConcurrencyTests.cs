using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>Turn-based execution and the attributes that relax it.</summary>
public sealed class ConcurrencyTests : IAsyncLifetime
{
    private TestingHost.InProcessTestCluster _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await TestClusters.StartAsync();

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    /// <summary>
    /// Under 50 concurrent calls that each await several times, a non-reentrant grain never has two requests in
    /// progress and never runs on two threads at once (measured inside the grain).
    /// </summary>
    [Fact]
    public async Task Non_reentrant_grain_runs_one_request_at_a_time()
    {
        var grain = _cluster.Client.GetGrain<IConcurrencyProbeGrain>(TestClusters.Key());
        await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => grain.Run(awaits: 3))));
        var (maxRequests, maxThreads) = await grain.Result();
        Assert.Equal(1, maxRequests);
        Assert.Equal(1, maxThreads);
    }

    /// <summary>A [Reentrant] grain interleaves requests at awaits, but still never runs on two threads at once.</summary>
    [Fact]
    public async Task Reentrant_grain_interleaves_but_stays_single_threaded()
    {
        var grain = _cluster.Client.GetGrain<IConcurrencyProbeGrain>(TestClusters.Key(), typeof(ReentrantProbeGrain).FullName);
        await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => grain.Run(awaits: 3))));
        var (maxRequests, maxThreads) = await grain.Result();
        Assert.True(maxRequests > 1, $"requests never interleaved (max {maxRequests})");
        Assert.Equal(1, maxThreads);
    }

    /// <summary>While a non-reentrant grain holds a request, a normal call waits and an [AlwaysInterleave] call runs.</summary>
    [Fact]
    public async Task Always_interleave_runs_while_the_grain_is_busy()
    {
        var s = Signals.NewScope();
        var grain = _cluster.Client.GetGrain<IGateGrain>(s);
        var hold = grain.Hold($"{s}/held", $"{s}/release");
        await Signals.WaitAsync($"{s}/held");

        var normal = grain.Normal($"{s}/normal");
        Assert.Equal("interleaving", await grain.Interleaving($"{s}/interleaving"));
        Assert.False(Signals.IsSet($"{s}/normal"), "a normal request ran while the grain was busy");

        Signals.Set($"{s}/release");
        await hold;
        Assert.Equal("normal", await normal);
        Assert.Equal(["hold-start", "interleaving", "hold-end", "normal"], await grain.Log());
    }

    /// <summary>[ReadOnly] requests of a non-reentrant grain run together; a writing request waits for them.</summary>
    [Fact]
    public async Task Read_only_requests_share_the_grain()
    {
        var s = Signals.NewScope();
        var grain = _cluster.Client.GetGrain<IGateGrain>(s);
        var first = grain.ReadHold($"{s}/r1", $"{s}/release");
        var second = grain.ReadHold($"{s}/r2", $"{s}/release");
        await Signals.WaitAsync($"{s}/r1");
        await Signals.WaitAsync($"{s}/r2");

        var write = grain.Normal($"{s}/write");
        Assert.False(Signals.IsSet($"{s}/write"), "a writing request ran alongside read-only ones");
        Signals.Set($"{s}/release");
        await Task.WhenAll(first, second, write);
        Assert.True(Signals.IsSet($"{s}/write"));
    }

    /// <summary>A [OneWay] call completes for the caller before the grain has done its work.</summary>
    [Fact]
    public async Task One_way_call_does_not_wait_for_the_grain()
    {
        var s = Signals.NewScope();
        var grain = _cluster.Client.GetGrain<IGateGrain>(s);
        await grain.FireAndForget($"{s}/gate", $"{s}/done");
        Assert.False(Signals.IsSet($"{s}/done"));
        Signals.Set($"{s}/gate");
        await Signals.WaitAsync($"{s}/done");
    }

    /// <summary>
    /// A [StatelessWorker(2)] grain runs two calls in parallel on two activations of one identity, and never more
    /// than two however many calls wait.
    /// </summary>
    [Fact]
    public async Task Stateless_worker_scales_to_its_limit()
    {
        var s = Signals.NewScope();
        var grain = _cluster.Client.GetGrain<IWorkerGrain>("pool");
        var calls = Enumerable.Range(0, 6).Select(_ => grain.Work($"{s}/entered", $"{s}/release")).ToList();

        await Signals.WaitAsync($"{s}/entered#2");
        Assert.Equal(2, Signals.Count($"{s}/entered"));
        Assert.Equal(2, _cluster.Silos[0].Silo.Catalog.Snapshot().Count(a => a.WorkerGroup is not null && a.GrainId == grain.GetGrainId()));

        Signals.Set($"{s}/release");
        var workers = await Task.WhenAll(calls);
        Assert.Equal(2, workers.Distinct().Count());
        Assert.Equal(6, Signals.Count($"{s}/entered"));
    }

    /// <summary>A call that comes back to a busy non-reentrant grain through another grain fails as a deadlock, naming the chain.</summary>
    [Fact]
    public async Task Call_chain_back_to_busy_grain_is_a_deadlock()
    {
        var a = TestClusters.Key("a-");
        var b = TestClusters.Key("b-");
        var started = DateTime.UtcNow;
        var error = await Assert.ThrowsAsync<DeadlockException>(() => _cluster.Client.GetGrain<IDeadlockGrain>(a).CallThrough(_cluster.Client.GetGrain<IDeadlockGrain>(b)));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10), "the deadlock was found by a timeout, not detected");
        Assert.Contains(a, error.Message, StringComparison.Ordinal);
        Assert.Contains(b, error.Message, StringComparison.Ordinal);
        Assert.Equal(3, error.CallChain.Count);
        Assert.Contains("IDeadlockGrain.CallThrough", error.CallChain[0], StringComparison.Ordinal);
        Assert.Contains("IDeadlockGrain.Ping", error.CallChain[2], StringComparison.Ordinal);
    }

    /// <summary>A non-reentrant grain calling itself is a deadlock too.</summary>
    [Fact]
    public async Task Self_call_is_a_deadlock()
    {
        await Assert.ThrowsAsync<DeadlockException>(() => _cluster.Client.GetGrain<IDeadlockGrain>(TestClusters.Key()).CallSelf());
    }

    /// <summary>Calls that are merely concurrent (not in one chain) wait instead of being reported as deadlocks.</summary>
    [Fact]
    public async Task Independent_calls_are_not_deadlocks()
    {
        var a = TestClusters.Key("a-");
        var b = TestClusters.Key("b-");
        var grainA = _cluster.Client.GetGrain<IDeadlockGrain>(a);
        var grainB = _cluster.Client.GetGrain<IDeadlockGrain>(b);
        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => i % 2 == 0 ? grainA.Ping() : grainB.CallBack(grainA)));
    }
}
