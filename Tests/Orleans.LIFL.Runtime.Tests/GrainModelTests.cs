using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Orleans.LIFL.Serialization;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>The grain programming model as a caller sees it: keys, references, arguments, results and errors.</summary>
public sealed class GrainModelTests : IAsyncLifetime
{
    private TestingHost.InProcessTestCluster _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await TestClusters.StartAsync();

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    /// <summary>String, integer and Guid keys reach the grain intact, and references to one identity are equal.</summary>
    [Fact]
    public async Task Keys_of_every_kind_reach_the_grain()
    {
        var client = _cluster.Client;
        var guid = Guid.NewGuid();
        Assert.Equal(guid, await client.GetGrain<IGuidKeyGrain>(guid).Key());
        Assert.Equal(-42L, await client.GetGrain<IIntegerKeyGrain>(-42).Key());
        Assert.Equal("integerkey/7", await client.GetGrain<IIntegerKeyGrain>(7).Identity());
        Assert.Equal("k:x", await client.GetGrain<IEchoGrain>("k").Echo("x"));

        var a = client.GetGrain<IEchoGrain>("same");
        var b = client.GetGrain<IEchoGrain>("same");
        Assert.Equal(a, b);
        Assert.Equal("same", a.GetPrimaryKeyString());
        Assert.Equal(guid, client.GetGrain<IGuidKeyGrain>(guid).GetPrimaryKey());
        Assert.NotEqual(a, client.GetGrain<IEchoGrain>("other"));
    }

    /// <summary>A grain's constructor gets its services from the silo's container, and the grain context.</summary>
    [Fact]
    public async Task Constructor_dependencies_are_injected()
    {
        Assert.Equal("hello, ada", await _cluster.Client.GetGrain<IDependencyGrain>("ada").Greet());
    }

    /// <summary>A missing constructor dependency fails the call with an error naming the grain and the service.</summary>
    [Fact]
    public async Task Missing_dependency_names_grain_and_service()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => _cluster.Client.GetGrain<IMissingDependencyGrain>("m").Ping());
        Assert.Contains(nameof(MissingDependencyGrain), error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(IUnregisteredService), error.Message, StringComparison.Ordinal);
    }

    /// <summary>The callee works on a copy of the arguments and the caller on a copy of the result.</summary>
    [Fact]
    public async Task Arguments_and_results_are_copied()
    {
        var grain = _cluster.Client.GetGrain<ICopyGrain>(TestClusters.Key());
        var sent = new Payload { Name = "p", Values = [1, 2], Table = { ["t"] = [7] } };

        var returned = await grain.Store(sent);
        sent.Values.Add(99);
        sent.Table["t"][0] = 99;
        Assert.NotSame(sent, returned);
        Assert.Equal([1, 2], returned.Values);

        returned.Values.Add(100);
        var stored = await grain.Get();
        Assert.Equal([1, 2], stored.Values);
        Assert.Equal(7, stored.Table["t"][0]);
        Assert.Equal("p", stored.Name);
    }

    /// <summary>Values wrapped in Immutable&lt;T&gt; are passed by reference; plain ones are not.</summary>
    [Fact]
    public async Task Immutable_values_are_not_copied()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<ICopyGrain>(key);
        var payload = new Payload { Name = "shared" };

        await grain.Keep(payload);
        Assert.NotSame(payload, ReceivedObjects.Get(key));

        await grain.KeepImmutable(payload.AsImmutable());
        Assert.Same(payload, ReceivedObjects.Get(key));
    }

    /// <summary>An exception thrown by grain code reaches the caller with its type and message, however it was thrown.</summary>
    [Fact]
    public async Task Exceptions_keep_type_and_message()
    {
        var grain = _cluster.Client.GetGrain<IThrowingGrain>("t");
        var custom = await Assert.ThrowsAsync<CustomGrainException>(() => grain.ThrowCustom("custom failure"));
        Assert.Equal("custom failure", custom.Message);

        var range = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => grain.ThrowAfterAwait("after await"));
        Assert.Contains("after await", range.Message, StringComparison.Ordinal);

        var sync = await Assert.ThrowsAsync<NotSupportedException>(async () => await grain.ThrowBeforeAwait("before await"));
        Assert.Equal("before await", sync.Message);

        Assert.Equal("t:still fine", await _cluster.Client.GetGrain<IEchoGrain>("t").Echo("still fine"));
    }

    /// <summary>Asking for an interface no class implements, or an ambiguous one, fails with a message that says why.</summary>
    [Fact]
    public void Unresolvable_interfaces_fail_clearly()
    {
        var missing = Assert.Throws<GrainTypeResolutionException>(() => _cluster.Client.GetGrain<IUnimplementedGrain>("x"));
        Assert.Contains(nameof(IUnimplementedGrain), missing.Message, StringComparison.Ordinal);

        var ambiguous = Assert.Throws<GrainTypeResolutionException>(() => _cluster.Client.GetGrain<ISharedInterfaceGrain>("x"));
        Assert.Contains(nameof(FirstSharedGrain), ambiguous.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(SecondSharedGrain), ambiguous.Message, StringComparison.Ordinal);
    }

    /// <summary>With several implementations, the class name prefix picks one.</summary>
    [Fact]
    public async Task Class_prefix_selects_the_implementation()
    {
        Assert.Equal("first", await _cluster.Client.GetGrain<ISharedInterfaceGrain>("x", typeof(FirstSharedGrain).FullName).Name());
        Assert.Equal("second", await _cluster.Client.GetGrain<ISharedInterfaceGrain>("x", typeof(SecondSharedGrain).FullName).Name());
    }

    /// <summary>Grain classes are created by the runtime only; new-ing one is refused.</summary>
    [Fact]
    public void Grains_cannot_be_constructed_directly()
    {
        var error = Assert.Throws<InvalidOperationException>(() => new EchoGrain());
        Assert.Contains("GetGrain", error.Message, StringComparison.Ordinal);
    }

    /// <summary>An observer made by client code receives calls from grains, and none once it is deleted.</summary>
    [Fact]
    public async Task Observers_receive_calls_until_deleted()
    {
        var observer = new Notifier();
        var reference = _cluster.Client.CreateObjectReference<INotifier>(observer);
        var grain = _cluster.Client.GetGrain<INotifyingGrain>("n");

        await grain.Send(reference, "first");
        Assert.Equal("first", await observer.Messages.Reader.ReadAsync(TestContext.Current.CancellationToken).WithPatience());

        _cluster.Client.DeleteObjectReference<INotifier>(observer);
        await Assert.ThrowsAsync<ObserverNotFoundException>(() => grain.Send(reference, "second"));
    }

    private sealed class Notifier : INotifier
    {
        public System.Threading.Channels.Channel<string> Messages { get; } = System.Threading.Channels.Channel.CreateUnbounded<string>();

        public Task Notify(string message) => Messages.Writer.WriteAsync(message).AsTask();
    }
}
