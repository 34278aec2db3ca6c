using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.Index;

/// <summary>
/// The names of one kind of workload that exist in the cluster (FL jobs, MoE deployments): grains are found by key,
/// so the dashboard needs a list to start from. Keyed by the kind (<see cref="WorkloadIndexes"/>); persisted.
/// </summary>
public interface IWorkloadIndexGrain : IGrainWithStringKey
{
    Task Add(string name);

    Task Remove(string name);

    /// <summary>The names, oldest first.</summary>
    [ReadOnly]
    Task<string[]> List();
}

public static class WorkloadIndexes
{
    public const string FlJobs = "fl-jobs";
    public const string MoeDeployments = "moe-deployments";
}

[GenerateSerializer]
public sealed class WorkloadIndexState
{
    [Id(0)]
    public List<string> Names { get; set; } = [];
}

public sealed class WorkloadIndexGrain([PersistentState("workload-index")] IPersistentState<WorkloadIndexState> stored) : Grain, IWorkloadIndexGrain
{
    /// <summary>Names kept at most: the oldest are forgotten first.</summary>
    private const int Capacity = 10_000;

    public async Task Add(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (stored.State.Names.Contains(name))
        {
            return;
        }

        stored.State.Names.Add(name);
        if (stored.State.Names.Count > Capacity)
        {
            stored.State.Names.RemoveRange(0, stored.State.Names.Count - Capacity);
        }

        await stored.WriteStateAsync();
    }

    public async Task Remove(string name)
    {
        if (stored.State.Names.Remove(name))
        {
            await stored.WriteStateAsync();
        }
    }

    public Task<string[]> List() => Task.FromResult(stored.State.Names.ToArray());
}
