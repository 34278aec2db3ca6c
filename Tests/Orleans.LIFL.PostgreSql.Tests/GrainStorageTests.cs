using Microsoft.Extensions.Logging.Abstractions;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.PostgreSql.Tests.Infrastructure;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;
using static Orleans.LIFL.PostgreSql.Tests.Infrastructure.TestDatabase;

namespace Orleans.LIFL.PostgreSql.Tests;

/// <summary>PostgreSqlGrainStorage on a fresh database per test (state as JSON unless a test says otherwise).</summary>
public sealed class GrainStorageTests(PostgresServer server) : IAsyncLifetime
{
    private const string ServiceId = "service-a";
    private const string StateName = "counter";
    private static readonly GrainId Grain = GrainId.Create(new GrainType("stateful"), "g1");
    private readonly List<IAsyncDisposable> _owned = [];
    private string _connectionString = "";

    public async ValueTask InitializeAsync() => _connectionString = await server.CreateDatabaseAsync();

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }
    }

    /// <summary>A written state reads back equal, with the ETag the write returned; each write moves the ETag on by one.</summary>
    [Fact]
    public async Task Written_state_reads_back()
    {
        var storage = NewStorage();
        var state = new TestGrainState<CounterState> { State = new CounterState { Count = 3, Items = ["a", "b"] } };

        await storage.WriteStateAsync(StateName, Grain, state);
        Assert.Equal(("1", true), (state.ETag, state.RecordExists));
        state.State.Count = 4;
        await storage.WriteStateAsync(StateName, Grain, state);
        Assert.Equal("2", state.ETag);

        var read = new TestGrainState<CounterState>();
        await storage.ReadStateAsync(StateName, Grain, read);
        Assert.Equal((4, "a,b", "2", true), (read.State.Count, string.Join(',', read.State.Items), read.ETag, read.RecordExists));
    }

    /// <summary>Reading a grain with no record gives the default state: a new object for classes, default for values and strings.</summary>
    [Fact]
    public async Task Missing_record_reads_as_the_default_state()
    {
        var storage = NewStorage();
        var counter = new TestGrainState<CounterState> { State = new CounterState { Count = 9 }, ETag = "5", RecordExists = true };
        var number = new TestGrainState<int> { State = 9, ETag = "5", RecordExists = true };
        var text = new TestGrainState<string?> { State = "stale", ETag = "5", RecordExists = true };

        await storage.ReadStateAsync(StateName, Grain, counter);
        await storage.ReadStateAsync(StateName, Grain, number);
        await storage.ReadStateAsync(StateName, Grain, text);

        Assert.Equal((0, 0, null, false), (counter.State.Count, counter.State.Items.Count, counter.ETag, counter.RecordExists));
        Assert.Equal((0, null, false), (number.State, number.ETag, number.RecordExists));
        Assert.Equal((null, null, false), (text.State, text.ETag, text.RecordExists));
    }

    /// <summary>A write with a stale ETag throws InconsistentStateException naming both ETags, and the stored state is unchanged.</summary>
    [Fact]
    public async Task Stale_etag_write_is_rejected()
    {
        var storage = NewStorage();
        var mine = new TestGrainState<CounterState> { State = new CounterState { Count = 1 } };
        await storage.WriteStateAsync(StateName, Grain, mine);
        var theirs = new TestGrainState<CounterState>();
        await storage.ReadStateAsync(StateName, Grain, theirs);
        theirs.State.Count = 2;
        await storage.WriteStateAsync(StateName, Grain, theirs);

        mine.State.Count = 100;
        var error = await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(StateName, Grain, mine));

        Assert.Equal(("2", "1"), (error.StoredEtag, error.CurrentEtag));
        Assert.Equal(
            "Cannot write state 'counter' of stateful/g1 in storage 'Default': it was changed since this activation read it (stored ETag 2, expected 1).",
            error.Message);
        Assert.Equal("1", mine.ETag);
        var stored = new TestGrainState<CounterState>();
        await storage.ReadStateAsync(StateName, Grain, stored);
        Assert.Equal((2, "2"), (stored.State.Count, stored.ETag));
    }

    /// <summary>Of concurrent writes that all read the same ETag, exactly one succeeds; the others are rejected.</summary>
    [Fact]
    public async Task Concurrent_writes_with_one_etag_have_one_winner()
    {
        const int Writers = 16;
        var storages = Enumerable.Range(0, 4).Select(_ => NewStorage()).ToList();
        await storages[0].WriteStateAsync(StateName, Grain, new TestGrainState<CounterState> { State = new CounterState() });
        await Task.WhenAll(storages.Select(s => s.ReadStateAsync(StateName, Grain, new TestGrainState<CounterState>())));

        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writers = Enumerable.Range(0, Writers).Select(i => Task.Run(async () =>
        {
            await go.Task;
            var state = new TestGrainState<CounterState> { State = new CounterState { Count = i }, ETag = "1", RecordExists = true };
            try
            {
                await storages[i % storages.Count].WriteStateAsync(StateName, Grain, state);
                return (Count: i, Won: true);
            }
            catch (InconsistentStateException)
            {
                return (Count: i, Won: false);
            }
        })).ToList();
        go.SetResult();
        var results = await Task.WhenAll(writers);

        var winner = Assert.Single(results, r => r.Won);
        var stored = new TestGrainState<CounterState>();
        await storages[0].ReadStateAsync(StateName, Grain, stored);
        Assert.Equal((winner.Count, "2"), (stored.State.Count, stored.ETag));
    }

    /// <summary>Writing with no ETag when a record exists (a second first write) is rejected and keeps the first record.</summary>
    [Fact]
    public async Task Insert_over_an_existing_record_is_rejected()
    {
        var storage = NewStorage();
        await storage.WriteStateAsync(StateName, Grain, new TestGrainState<CounterState> { State = new CounterState { Count = 1 } });

        var late = new TestGrainState<CounterState> { State = new CounterState { Count = 2 } };
        var error = await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(StateName, Grain, late));

        Assert.Equal(("1", null), (error.StoredEtag, error.CurrentEtag));
        Assert.EndsWith("(stored ETag 1, expected none).", error.Message);
        var stored = new TestGrainState<CounterState>();
        await storage.ReadStateAsync(StateName, Grain, stored);
        Assert.Equal(1, stored.State.Count);
    }

    /// <summary>Clear with the current ETag deletes the record; with a stale ETag it throws and keeps it.</summary>
    [Fact]
    public async Task Clear_deletes_only_with_the_current_etag()
    {
        var storage = NewStorage();
        var state = new TestGrainState<CounterState> { State = new CounterState { Count = 1 } };
        await storage.WriteStateAsync(StateName, Grain, state);
        var stale = new TestGrainState<CounterState> { ETag = "1" };
        await storage.WriteStateAsync(StateName, Grain, state);

        var error = await Assert.ThrowsAsync<InconsistentStateException>(() => storage.ClearStateAsync(StateName, Grain, stale));
        Assert.Equal(("2", "1"), (error.StoredEtag, error.CurrentEtag));
        Assert.StartsWith("Cannot clear state 'counter'", error.Message);

        await storage.ClearStateAsync(StateName, Grain, state);
        Assert.Equal((null, false), (state.ETag, state.RecordExists));
        var read = new TestGrainState<CounterState>();
        await storage.ReadStateAsync(StateName, Grain, read);
        Assert.Equal((0, null, false), (read.State.Count, read.ETag, read.RecordExists));
        Assert.Equal(["0"], await QueryAsync(_connectionString, "SELECT count(*) FROM lifl_grain_state"));

        // Clearing what is not there is fine; after a clear the grain starts again from ETag 1.
        await storage.ClearStateAsync(StateName, Grain, state);
        await storage.WriteStateAsync(StateName, Grain, state);
        Assert.Equal("1", state.ETag);
    }

    /// <summary>Storages with different names, or the same name in different services, never see each other's state.</summary>
    [Fact]
    public async Task Storages_and_services_are_separate()
    {
        var defaultA = NewStorage("Default", "service-a");
        var archiveA = NewStorage("Archive", "service-a");
        var defaultB = NewStorage("Default", "service-b");
        await defaultA.WriteStateAsync(StateName, Grain, new TestGrainState<CounterState> { State = new CounterState { Count = 1 } });
        await archiveA.WriteStateAsync(StateName, Grain, new TestGrainState<CounterState> { State = new CounterState { Count = 2 } });

        var fromB = new TestGrainState<CounterState>();
        await defaultB.ReadStateAsync(StateName, Grain, fromB);
        Assert.Equal((0, false), (fromB.State.Count, fromB.RecordExists));
        var fromA = new TestGrainState<CounterState>();
        await defaultA.ReadStateAsync(StateName, Grain, fromA);
        Assert.Equal((1, "1"), (fromA.State.Count, fromA.ETag));
        var fromArchive = new TestGrainState<CounterState>();
        await archiveA.ReadStateAsync(StateName, Grain, fromArchive);
        Assert.Equal((2, "1"), (fromArchive.State.Count, fromArchive.ETag));
        // Another state name of the same grain is another record too.
        var otherState = new TestGrainState<CounterState>();
        await defaultA.ReadStateAsync("other", Grain, otherState);
        Assert.False(otherState.RecordExists);
    }

    /// <summary>The silo's own codec (the runtime's binary serializer) stores and reads back state.</summary>
    [Fact]
    public async Task Default_codec_round_trips_state()
    {
        var storage = new PostgreSqlGrainStorage("Default", _connectionString, ServiceId, NullLogger<PostgreSqlGrainStorage>.Instance);
        _owned.Add(storage);
        var state = new TestGrainState<Dictionary<string, int>> { State = new() { ["a"] = 1, ["b"] = -2 } };

        await storage.WriteStateAsync(StateName, Grain, state);
        var read = new TestGrainState<Dictionary<string, int>>();
        await storage.ReadStateAsync(StateName, Grain, read);

        Assert.Equal(state.State, read.State);
        Assert.Equal("1", read.ETag);
    }

    private PostgreSqlGrainStorage NewStorage(string name = "Default", string serviceId = ServiceId)
    {
        var storage = new PostgreSqlGrainStorage(name, _connectionString, serviceId, JsonStatePayloadCodec.Instance, NullLogger<PostgreSqlGrainStorage>.Instance);
        _owned.Add(storage);
        return storage;
    }

    public sealed class CounterState
    {
        public int Count { get; set; }

        public List<string> Items { get; set; } = [];
    }

    private sealed class TestGrainState<T> : IGrainState<T>
    {
        public T State { get; set; } = default!;

        public string? ETag { get; set; }

        public bool RecordExists { get; set; }
    }
}
