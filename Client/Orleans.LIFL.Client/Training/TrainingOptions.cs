namespace Orleans.LIFL.Client.Training;

/// <summary>How <see cref="IClassifier.Train"/> runs mini-batch SGD on one client's examples.</summary>
public sealed record TrainingOptions
{
    public const int DefaultEpochs = 1;
    public const int DefaultBatchSize = 32;
    public const float DefaultLearningRate = 0.05f;

    /// <summary>Passes over the examples; default <see cref="DefaultEpochs"/>.</summary>
    public int Epochs { get; init; } = DefaultEpochs;

    /// <summary>Examples per SGD step (the last step of an epoch takes what is left); default <see cref="DefaultBatchSize"/>.</summary>
    public int BatchSize { get; init; } = DefaultBatchSize;

    /// <summary>The SGD step size; default <see cref="DefaultLearningRate"/>.</summary>
    public float LearningRate { get; init; } = DefaultLearningRate;

    /// <summary>Seeds the order in which each epoch visits the examples: the same seed gives the same training.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// FedProx's μ: above 0 the local objective adds (μ/2)·‖w − <see cref="GlobalParameters"/>‖², which keeps a client's
    /// weights near the round's global model. 0 (the default) is plain SGD, as in FedAvg.
    /// </summary>
    public float ProximalMu { get; init; }

    /// <summary>The round's starting global weights, in the model's flat layout; required when <see cref="ProximalMu"/> is above 0.</summary>
    public ReadOnlyMemory<float> GlobalParameters { get; init; }

    /// <summary>Throws, naming the setting, unless these options can train a model of <paramref name="parameters"/> values.</summary>
    internal void Validate(int parameters)
    {
        if (Epochs < 1)
        {
            throw new ArgumentException($"{nameof(Epochs)} is {Epochs}; it must be at least 1.", "options");
        }

        if (BatchSize < 1)
        {
            throw new ArgumentException($"{nameof(BatchSize)} is {BatchSize}; it must be at least 1.", "options");
        }

        if (!(LearningRate > 0) || !float.IsFinite(LearningRate))
        {
            throw new ArgumentException($"{nameof(LearningRate)} is {LearningRate}; it must be positive and finite.", "options");
        }

        if (!(ProximalMu >= 0) || !float.IsFinite(ProximalMu))
        {
            throw new ArgumentException($"{nameof(ProximalMu)} is {ProximalMu}; it must be 0 or positive, and finite.", "options");
        }

        if (ProximalMu > 0 && GlobalParameters.Length != parameters)
        {
            throw new ArgumentException(
                $"{nameof(ProximalMu)} is {ProximalMu}, so {nameof(GlobalParameters)} must hold the model's {parameters:N0} values; it holds {GlobalParameters.Length:N0}.",
                "options");
        }
    }
}
