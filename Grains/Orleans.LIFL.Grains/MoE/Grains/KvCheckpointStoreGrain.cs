using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// Tarragon's KV checkpoint store, one per (deployment, session silo) and placed on another silo than the sessions it
/// serves: long-lived, so a request costs it no activation of its own. A session appends every new position's KV
/// segment asynchronously, in batches, never waiting for the answer before it decodes on; the store commits each
/// request's contiguous prefix and numbers its commits. A session that resumes elsewhere reads the committed prefix
/// back from the store its predecessor wrote to (the client passes its key on) and goes on appending there.
/// </summary>
public interface IKvCheckpointStoreGrain : IGrainWithStringKey
{
    /// <summary>
    /// Starts (or restarts, for another generation under the same id) the checkpoint of <paramref name="request"/>;
    /// returns the store's silo (where a session resuming from it is opened).
    /// </summary>
    Task<string> Begin(GenerationRequest request, int layers, int modelDim);

    /// <summary>
    /// Adds a batch of consecutive positions and returns the position committed through (−1: none). Positions already
    /// committed are skipped (a resend); a batch leaving a gap after the committed prefix is refused, and the answer
    /// says where to resume from. The store keeps the batch's bytes where they are, in the node's shared pool.
    /// </summary>
    Task<int> Append(string requestId, KvSegments segments);

    /// <summary>The committed prefix (from position 0, in one buffer of the node's pool), for a session resuming elsewhere.</summary>
    [ReadOnly]
    Task<KvCheckpoint> Restore(string requestId);

    [ReadOnly]
    Task<KvStoreStatus> Status(string requestId);

    /// <summary>The request finished and its client has everything: forget it.</summary>
    Task Drop(string requestId);
}

public static class KvCheckpointStores
{
    /// <summary>The store that the sessions of <paramref name="deployment"/> on <paramref name="silo"/> begin their checkpoints in.</summary>
    public static string Key(string deployment, string silo) => $"{deployment}/{silo}";
}

[AwayFromCallerPlacement]
public sealed class KvCheckpointStoreGrain(TimeProvider time, SharedBufferPool pool) : Grain, IKvCheckpointStoreGrain
{
    private readonly KvCheckpointShelf _shelf = new(time);

    public Task<string> Begin(GenerationRequest request, int layers, int modelDim)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(modelDim, 1);
        _shelf.Begin(request, layers * modelDim);
        return Task.FromResult(GrainContext.Silo.ToString());
    }

    public Task<int> Append(string requestId, KvSegments segments)
    {
        ArgumentNullException.ThrowIfNull(segments);

        // Not held: this store was lost (its silo died), never begun, or dropped the request as stale. The session
        // begins it again and resends what its cache holds.
        var held = _shelf.Touch(requestId);
        if (held is null)
        {
            segments.Dispose();
            throw new KvCheckpointLostException($"The checkpoint store {GrainId.Key} holds no checkpoint of request {requestId}; begin it again.");
        }

        return Task.FromResult(held.Append(segments));
    }

    public Task<KvCheckpoint> Restore(string requestId)
    {
        // Handed over with the answer: the caller's reference is this one.
        var checkpoint = _shelf.Touch(requestId)?.Checkpoint(pool) ?? new KvCheckpoint(null, null, null);
        checkpoint.Segments?.Bytes.MoveToCaller();
        return Task.FromResult(checkpoint with { Silo = GrainContext.Silo.ToString() });
    }

    public Task<KvStoreStatus> Status(string requestId) =>
        Task.FromResult(_shelf.Find(requestId) is { } held
            ? new KvStoreStatus(GrainId.Key, requestId, GrainContext.Silo.ToString(), held.CommittedThrough, [.. held.Commits], held.BytesStored)
            : new KvStoreStatus(GrainId.Key, requestId, GrainContext.Silo.ToString(), -1, [], 0));

    public Task Drop(string requestId)
    {
        _shelf.Drop(requestId);
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _shelf.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>A checkpoint store has nothing for the request (it was lost with its silo): begin the checkpoint again.</summary>
public sealed class KvCheckpointLostException : Exception
{
    public KvCheckpointLostException(string message) : base(message)
    {
    }
}
