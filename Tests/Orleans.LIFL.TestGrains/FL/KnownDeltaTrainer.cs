using Orleans.LIFL.Client.FL;
using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.TestGrains.FL;

/// <summary>
/// A trainer whose update in round r is a delta that depends only on (client, r), so that a test can compute
/// every published model exactly. It can wait at a gate before training, and stop taking part after some rounds.
/// </summary>
public sealed class KnownDeltaTrainer(int client, Task? gate = null, int rounds = int.MaxValue) : ILocalTrainer
{
    public long Examples => 10 * (client + 1);

    /// <summary>The delta of this client in <paramref name="round"/>, for a model of <paramref name="parameters"/> values.</summary>
    public float[] DeltaFor(int round, int parameters = 15) => Delta((client * 100) + round, parameters);

    public static float[] Delta(int seed, int parameters = 15) =>
        Enumerable.Range(0, parameters).Select(i => (float)Math.Sin((seed * 13.0) + i) * 0.5f).ToArray();

    /// <summary>global + Σ nᵢΔᵢ / Σ nᵢ, in double precision.</summary>
    public static float[] FedAvg(float[] global, IEnumerable<(float[] Delta, long Examples)> updates)
    {
        var list = updates.ToList();
        var total = list.Sum(u => (double)u.Examples);
        return global.Select((g, i) => (float)(g + (list.Sum(u => u.Delta[i] * (double)u.Examples) / total))).ToArray();
    }

    public async ValueTask<long> TrainAsync(TrainingRound round, SharedBuffer parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(round);
        ArgumentNullException.ThrowIfNull(parameters);
        if (round.Round > rounds)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        await (gate ?? Task.CompletedTask).WaitAsync(cancellationToken);
        var weights = parameters.AsSpan<float>();
        var delta = DeltaFor(round.Round, weights.Length);
        for (var i = 0; i < weights.Length; i++)
        {
            weights[i] += delta[i];
        }

        return Examples;
    }
}
