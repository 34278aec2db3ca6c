using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL;

/// <summary>
/// One published global model, kept in the cluster's grain storage (PostgreSQL in a cluster, memory embedded), so
/// that a job resumes from its last published round after every silo restarted. Key: "job/version".
/// </summary>
public interface IModelStoreGrain : IGrainWithStringKey
{
    Task Save(SharedBuffer model);

    /// <summary>The stored model in a new shared buffer; null when none was stored under this key.</summary>
    Task<SharedBuffer?> Load();
}

/// <summary>A stored model: made once per save and never changed, so storage keeps it without another copy.</summary>
[GenerateSerializer]
[Immutable]
public sealed class ModelSnapshot
{
    [Id(0)]
    public float[] Weights { get; init; } = [];
}

public sealed class ModelStoreGrain(SharedBufferPool pool, [PersistentState("model")] IPersistentState<ModelSnapshot> stored) : Grain, IModelStoreGrain
{
    public async Task Save(SharedBuffer model)
    {
        using (model)
        {
            // The storage providers serialize managed state: the one copy this path makes, off the update path.
            stored.State = new ModelSnapshot { Weights = model.AsSpan<float>().ToArray() };
        }

        await stored.WriteStateAsync();
        Release();
    }

    public Task<SharedBuffer?> Load()
    {
        if (!stored.RecordExists)
        {
            return Task.FromResult<SharedBuffer?>(null);
        }

        var weights = stored.State.Weights;
        var buffer = pool.Rent((long)weights.Length * sizeof(float));
        weights.CopyTo(buffer.AsSpan<float>());
        Release();
        return Task.FromResult<SharedBuffer?>(buffer.MoveToCaller());
    }

    /// <summary>Models are large and read rarely: nothing stays in memory once a call is done.</summary>
    private void Release()
    {
        stored.State = new ModelSnapshot();
        DeactivateOnIdle();
    }
}
