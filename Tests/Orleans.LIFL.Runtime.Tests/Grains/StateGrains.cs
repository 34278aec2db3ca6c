using Orleans.LIFL.Persistence;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Tests.Grains;

[GenerateSerializer]
public sealed class CounterState
{
    [Id(0)]
    public int Count { get; set; }

    [Id(1)]
    public List<string> Notes { get; set; } = [];
}

public interface IStatefulGrain : ILifecycleGrain
{
    Task<int> Increment(string note);

    Task<(int Count, string? Etag, bool Exists, int SeenAtActivation)> Read();

    Task Clear();
}

public sealed class StatefulGrain([PersistentState("counter")] IPersistentState<CounterState> state) : LifecycleGrain, IStatefulGrain
{
    private int _seenAtActivation = -1;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _seenAtActivation = state.State.Count;
        return base.OnActivateAsync(cancellationToken);
    }

    public async Task<int> Increment(string note)
    {
        state.State.Count++;
        state.State.Notes.Add(note);
        await state.WriteStateAsync();
        return state.State.Count;
    }

    public Task<(int Count, string? Etag, bool Exists, int SeenAtActivation)> Read() =>
        Task.FromResult((state.State.Count, state.Etag, state.RecordExists, _seenAtActivation));

    public Task Clear() => state.ClearStateAsync();
}

public interface IMissingStorageGrain : IGrainWithStringKey
{
    Task Ping();
}

public sealed class MissingStorageGrain([PersistentState("data", "NoSuchStorage")] IPersistentState<CounterState> state) : Grain, IMissingStorageGrain
{
    public Task Ping() => Task.FromResult(state);
}
