using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.TestGrains;

/// <summary>Reports, from the silo it lives on, that silo's view of the cluster and its activations.</summary>
public interface ISiloInspectorGrain : IGrainWithStringKey
{
    Task<string> Silo();

    Task<List<string>> ActiveSilos();

    /// <summary>Keys of the activations of grain type <paramref name="grainType"/> on this silo.</summary>
    Task<List<string>> ActiveKeys(string grainType);
}

[PreferLocalPlacement]
public sealed class SiloInspectorGrain(ILocalSiloDetails silo) : Grain, ISiloInspectorGrain
{
    public Task<string> Silo() => Task.FromResult(silo.SiloAddress.ToString());

    public Task<List<string>> ActiveSilos() => Task.FromResult(silo.ActiveSilos.Select(s => s.ToString()).ToList());

    public Task<List<string>> ActiveKeys(string grainType) =>
        Task.FromResult(silo.GetActiveGrains().Where(g => g.Type.Value == grainType).Select(g => g.Key).ToList());
}

/// <summary>A randomly placed grain with durable state: where it lives, and how often it was called.</summary>
public interface ICounterGrain : IGrainWithStringKey
{
    Task<int> Increment();

    Task<string> Silo();

    /// <summary>Waits until <paramref name="release"/> seconds pass: a call that is in progress when its silo dies.</summary>
    Task Hold(TimeSpan release);
}

[GenerateSerializer]
public sealed class CounterState
{
    [Id(0)]
    public int Count { get; set; }
}

[RandomPlacement]
public sealed class CounterGrain([PersistentState("counter")] IPersistentState<CounterState> state) : Grain, ICounterGrain
{
    public const string GrainTypeName = "counter";

    public async Task<int> Increment()
    {
        state.State.Count++;
        await state.WriteStateAsync();
        return state.State.Count;
    }

    public Task<string> Silo() => Task.FromResult(GrainContext.Silo.ToString());

    public Task Hold(TimeSpan release) => Task.Delay(release);
}
