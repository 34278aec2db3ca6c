using Orleans.LIFL.Client.Training;
using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Client.FL;

/// <summary>The example trainer: one of the built-in classifiers trained with SGD on this client's share of a data set.</summary>
public sealed class ClassifierTrainer(IClassifier model, LabeledImages data, int[] indices, int seed) : ILocalTrainer
{
    public async ValueTask<long> TrainAsync(TrainingRound round, SharedBuffer parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(round);
        ArgumentNullException.ThrowIfNull(parameters);
        if (round.Model.Parameters != model.Spec.Parameters)
        {
            throw new InvalidOperationException($"Job {round.JobId} trains a model of {round.Model}; this trainer's is {model.Spec}.");
        }

        // Training is CPU work: off the caller's thread, so that many simulated clients train side by side.
        await Task.Run(
            () => model.Train(parameters.AsSpan<float>(), data, indices, new TrainingOptions
            {
                Epochs = round.Training.Epochs,
                BatchSize = round.Training.BatchSize,
                LearningRate = (float)round.Training.LearningRate,
                Seed = unchecked((seed * 31) + round.Round),
                ProximalMu = (float)round.ProximalMu,
                GlobalParameters = round.ProximalMu > 0 ? round.Global.AsMemory<float>() : default,
            }),
            cancellationToken);
        return (long)indices.Length * round.Training.Epochs;
    }
}
