using Orleans.LIFL.Configuration;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>Calls that never get an answer fail with a clear timeout error.</summary>
public sealed class CallTimeoutTests
{
    /// <summary>With the default 30 s timeout (on a manual clock), a call to a grain that never answers fails after 30 s, not before.</summary>
    [Fact]
    public async Task Default_timeout_is_thirty_seconds()
    {
        var time = new ManualTimeProvider();
        await using var cluster = await TestClusters.StartAsync(time: time);
        var grain = cluster.Client.GetGrain<IGateGrain>(TestClusters.Key());
        var call = grain.NeverAnswers();

        time.Advance(TimeSpan.FromSeconds(29));
        Assert.False(call.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(2));
        var error = await Assert.ThrowsAsync<GrainCallTimeoutException>(() => call.WithPatience());
        Assert.Contains("IGateGrain.NeverAnswers", error.Message, StringComparison.Ordinal);
        Assert.Contains(grain.GetPrimaryKeyString(), error.Message, StringComparison.Ordinal);
        Assert.Contains("00:00:30", error.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<TimeoutException>(error);
    }

    /// <summary>[ResponseTimeout] on a method overrides the default for that method only.</summary>
    [Fact]
    public async Task Method_timeout_overrides_the_default()
    {
        var time = new ManualTimeProvider();
        await using var cluster = await TestClusters.StartAsync(time: time);
        var quick = cluster.Client.GetGrain<IGateGrain>(TestClusters.Key()).NeverAnswersQuickly();
        var slow = cluster.Client.GetGrain<IGateGrain>(TestClusters.Key()).NeverAnswers();

        time.Advance(TimeSpan.FromSeconds(2));
        await Assert.ThrowsAsync<GrainCallTimeoutException>(() => quick.WithPatience());
        Assert.False(slow.IsCompleted);
    }

    /// <summary>A call queued behind one that never finishes times out too, and the error says it was still waiting.</summary>
    [Fact]
    public async Task Queued_call_times_out_and_says_so()
    {
        var time = new ManualTimeProvider();
        await using var cluster = await TestClusters.StartAsync(
            configure: silo => silo.Configure<MessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(5)),
            time: time);
        var s = Signals.NewScope();
        var grain = cluster.Client.GetGrain<IGateGrain>(s);
        _ = grain.Hold($"{s}/held", $"{s}/never");
        await Signals.WaitAsync($"{s}/held");
        var queued = grain.Normal($"{s}/normal");

        time.Advance(TimeSpan.FromSeconds(6));
        var error = await Assert.ThrowsAsync<GrainCallTimeoutException>(() => queued.WithPatience());
        Assert.Contains("waiting", error.Message, StringComparison.Ordinal);
        Assert.False(Signals.IsSet($"{s}/normal"));
    }

    /// <summary>On the real clock, through the client, a short configured timeout fires in about that time.</summary>
    [Fact]
    public async Task Real_clock_timeout_through_the_client()
    {
        await using var cluster = await TestClusters.StartAsync(
            configure: silo => silo.Configure<MessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromMilliseconds(300)));
        var started = DateTime.UtcNow;
        await Assert.ThrowsAsync<GrainCallTimeoutException>(() => cluster.Client.GetGrain<IGateGrain>(TestClusters.Key()).NeverAnswers());
        var elapsed = DateTime.UtcNow - started;
        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(250), Signals.Patience);
    }
}
