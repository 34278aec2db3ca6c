using System.Threading.Channels;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Orleans.LIFL.Streams;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>The in-memory stream provider: explicit and implicit subscriptions, from grains and from client code.</summary>
public sealed class StreamTests : IAsyncLifetime
{
    private TestingHost.InProcessTestCluster _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await TestClusters.StartAsync(silos: 2);

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    private IAsyncStream<string> Stream(string streamNamespace, string key) =>
        _cluster.Client.GetStreamProvider("Default").GetStream<string>(StreamId.Create(streamNamespace, key));

    /// <summary>An event on a stream activates the implicitly subscribed grain on demand and delivers the event to it.</summary>
    [Fact]
    public async Task Implicit_subscription_activates_the_grain()
    {
        var key = TestClusters.Key();
        Assert.Equal(0, Signals.Count($"{key}/activations"));

        await Stream("implicit-test", key).OnNextAsync("hello");
        await Signals.WaitAsync($"{key}/got/hello");
        Assert.Equal(1, Signals.Count($"{key}/activations"));

        await Stream("implicit-test", key).OnNextAsync("again");
        Assert.Equal(["hello", "again"], await _cluster.Client.GetGrain<IImplicitConsumerGrain>(key).Received());
    }

    /// <summary>Events on other namespaces or keys do not reach an implicit subscriber.</summary>
    [Fact]
    public async Task Implicit_subscription_is_scoped_to_namespace_and_key()
    {
        var key = TestClusters.Key();
        await Stream("other-namespace", key).OnNextAsync("x");
        await Stream("implicit-test", key + "-other").OnNextAsync("y");
        Assert.Equal(0, Signals.Count($"{key}/activations"));
    }

    /// <summary>A grain's explicit subscription gets events, survives the grain's deactivation (resumed on
    /// reactivation), and stops when unsubscribed.</summary>
    [Fact]
    public async Task Explicit_subscription_outlives_deactivation()
    {
        var key = TestClusters.Key();
        var consumer = _cluster.Client.GetGrain<IExplicitConsumerGrain>(key);
        await consumer.Subscribe();
        await Stream("explicit-test", key).OnNextAsync("a");
        Assert.Equal(["a"], await consumer.Received());

        await consumer.Deactivate();
        await Signals.WaitAsync($"{key}/deactivated#1");
        await Stream("explicit-test", key).OnNextAsync("b");
        Assert.Equal(2, Signals.Count($"{key}/activations"));
        Assert.Equal(["b"], await consumer.Received());

        await consumer.Unsubscribe();
        await Stream("explicit-test", key).OnNextAsync("c");
        Assert.Equal(["b"], await consumer.Received());
    }

    /// <summary>Client code can subscribe; events produced by a grain reach it in order.</summary>
    [Fact]
    public async Task Client_subscription_receives_events_from_a_grain()
    {
        var key = TestClusters.Key();
        var received = Channel.CreateUnbounded<string>();
        var handle = await Stream("client-test", key).SubscribeAsync((item, _) => received.Writer.WriteAsync(item).AsTask());
        var producer = _cluster.Client.GetGrain<IProducerGrain>("p");
        await producer.Produce("client-test", key, "one");
        await producer.Produce("client-test", key, "two");

        Assert.Equal("one", await received.Reader.ReadAsync(TestContext.Current.CancellationToken).WithPatience());
        Assert.Equal("two", await received.Reader.ReadAsync(TestContext.Current.CancellationToken).WithPatience());

        await handle.UnsubscribeAsync();
        await producer.Produce("client-test", key, "three");
        Assert.False(received.Reader.TryRead(out _));
    }

    /// <summary>A subscriber's failure is reported to the producer.</summary>
    [Fact]
    public async Task Subscriber_failure_reaches_the_producer()
    {
        var key = TestClusters.Key();
        await _cluster.Client.GetGrain<IExplicitConsumerGrain>(key).Subscribe();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => Stream("explicit-test", key).OnNextAsync("boom"));
        Assert.Contains("refused boom", error.Message, StringComparison.Ordinal);
    }

    /// <summary>The stream provider asked for must be registered; the error names it.</summary>
    [Fact]
    public void Unknown_stream_provider_is_reported()
    {
        var error = Assert.Throws<KeyNotFoundException>(() => _cluster.Client.GetStreamProvider("Nope"));
        Assert.Contains("Nope", error.Message, StringComparison.Ordinal);
    }
}
