using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>IPersistentState&lt;T&gt; on the in-memory storage provider.</summary>
public sealed class GrainStateTests : IAsyncLifetime
{
    private TestingHost.InProcessTestCluster _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await TestClusters.StartAsync();

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    /// <summary>Written state is read back, before OnActivateAsync, by the next activation.</summary>
    [Fact]
    public async Task State_survives_deactivation()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<IStatefulGrain>(key);
        Assert.Equal((0, null, false, 0), await grain.Read());
        await grain.Increment("a");
        await grain.Increment("b");
        await grain.Increment("c");

        await grain.Deactivate();
        await Signals.WaitAsync($"{key}/deactivated#1");
        var (count, etag, exists, seenAtActivation) = await grain.Read();
        Assert.Equal(3, count);
        Assert.Equal(3, seenAtActivation);
        Assert.True(exists);
        Assert.NotNull(etag);
        Assert.Equal(2, Signals.Count($"{key}/activations"));
    }

    /// <summary>A write from an activation whose ETag is stale fails with InconsistentStateException and changes nothing.</summary>
    [Fact]
    public async Task Stale_write_is_rejected()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<IStatefulGrain>(key);
        await grain.Increment("mine");
        var (_, etag, _, _) = await grain.Read();

        // Another writer (as a second activation elsewhere would) updates the record behind the grain's back.
        var storage = _cluster.Silos[0].Services.GetRequiredKeyedService<IGrainStorage>("Default");
        var other = new TestGrainState<CounterState> { State = new CounterState { Count = 42 }, ETag = etag, RecordExists = true };
        await storage.WriteStateAsync("counter", grain.GetGrainId(), other);

        var error = await Assert.ThrowsAsync<InconsistentStateException>(() => grain.Increment("stale"));
        Assert.Contains("counter", error.Message, StringComparison.Ordinal);
        Assert.Equal(other.ETag, error.StoredEtag);

        var check = new TestGrainState<CounterState>();
        await storage.ReadStateAsync("counter", grain.GetGrainId(), check);
        Assert.Equal(42, check.State.Count);
    }

    /// <summary>Clearing removes the record; the next activation starts from the default state.</summary>
    [Fact]
    public async Task Clear_removes_the_record()
    {
        var key = TestClusters.Key();
        var grain = _cluster.Client.GetGrain<IStatefulGrain>(key);
        await grain.Increment("x");
        await grain.Clear();
        Assert.Equal((0, null, false), Drop4(await grain.Read()));

        await grain.Deactivate();
        await Signals.WaitAsync($"{key}/deactivated#1");
        Assert.Equal((0, null, false), Drop4(await grain.Read()));
    }

    /// <summary>State is copied into and out of the store: the store never shares objects with a grain.</summary>
    [Fact]
    public async Task Storage_copies_values()
    {
        var storage = _cluster.Silos[0].Services.GetRequiredKeyedService<IGrainStorage>("Default");
        var id = GrainId.Create(new GrainType("copy-test"), TestClusters.Key());
        var written = new TestGrainState<CounterState> { State = new CounterState { Notes = ["a"] } };
        await storage.WriteStateAsync("s", id, written);
        written.State.Notes.Add("mutated after write");

        var read = new TestGrainState<CounterState>();
        await storage.ReadStateAsync("s", id, read);
        Assert.Equal(["a"], read.State.Notes);
    }

    /// <summary>A grain asking for storage that is not registered fails to activate with an error naming the storage.</summary>
    [Fact]
    public async Task Missing_storage_is_named()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => _cluster.Client.GetGrain<IMissingStorageGrain>("x").Ping());
        Assert.Contains("NoSuchStorage", error.Message, StringComparison.Ordinal);
    }

    private static (int, string?, bool) Drop4((int Count, string? Etag, bool Exists, int Seen) value) => (value.Count, value.Etag, value.Exists);

    private sealed class TestGrainState<T> : IGrainState<T>
        where T : new()
    {
        public T State { get; set; } = new();

        public string? ETag { get; set; }

        public bool RecordExists { get; set; }
    }
}
