using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL;

namespace Orleans.LIFL.Client.FL;

/// <summary>The user's part of federated training: one round of local training on this client's data.</summary>
public interface ILocalTrainer
{
    /// <summary>
    /// Trains in place: <paramref name="parameters"/> holds the round's global weights (float32, the job's model layout)
    /// on entry and must hold the trained weights on return. Returns the number of examples trained on (the update's
    /// weight in the average).
    /// </summary>
    ValueTask<long> TrainAsync(TrainingRound round, SharedBuffer parameters, CancellationToken cancellationToken);
}

/// <summary>What a trainer is asked to do in one round.</summary>
/// <param name="Global">The round's global model (read-only: on a silo's node it is the job's own buffer, not a copy).</param>
public sealed record TrainingRound(
    string JobId,
    string ClientId,
    int Round,
    long ModelVersion,
    ModelSpec Model,
    TrainingSettings Training,
    double ProximalMu,
    SharedBuffer Global);
