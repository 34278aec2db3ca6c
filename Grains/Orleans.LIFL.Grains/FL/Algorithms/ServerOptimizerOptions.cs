using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// The server optimizer's hyperparameters, named as in Reddi et al. 2021 (Algorithm 2). Each optimizer reads only its
/// own; the defaults are those of the paper and of Flower's strategies, except where a constant says otherwise.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record ServerOptimizerOptions
{
    /// <summary>η of FedAvg and FedAvgM: 1 applies the mean delta as is, giving the example-weighted average of the client models.</summary>
    public const double DefaultAveragingLearningRate = 1.0;

    /// <summary>η of FedAdam, FedYogi and FedAdagrad.</summary>
    public const double DefaultAdaptiveLearningRate = 0.1;

    /// <summary>β of FedAvgM. (Flower's FedAvgM defaults to 0, which is FedAvg; 0.9 is the usual choice in its papers.)</summary>
    public const double DefaultMomentum = 0.9;

    /// <summary>β₁ of the adaptive optimizers: the decay of the first moment.</summary>
    public const double DefaultBeta1 = 0.9;

    /// <summary>β₂ of FedAdam and FedYogi: the decay of the second moment.</summary>
    public const double DefaultBeta2 = 0.99;

    /// <summary>τ of the adaptive optimizers: the paper's 1e-3 (Flower's default is 1e-9), which bounds the step where v is tiny.</summary>
    public const double DefaultTau = 1e-3;

    /// <summary>η; null takes the optimizer's default (<see cref="DefaultAveragingLearningRate"/> or <see cref="DefaultAdaptiveLearningRate"/>).</summary>
    [Id(0)]
    public double? ServerLearningRate { get; init; }

    /// <summary>β of FedAvgM: m = β·m + Δ̄.</summary>
    [Id(1)]
    public double Momentum { get; init; } = DefaultMomentum;

    /// <summary>β₁: m = β₁·m + (1 − β₁)·Δ̄.</summary>
    [Id(2)]
    public double Beta1 { get; init; } = DefaultBeta1;

    /// <summary>β₂ of FedAdam (v = β₂·v + (1 − β₂)·Δ̄²) and FedYogi.</summary>
    [Id(3)]
    public double Beta2 { get; init; } = DefaultBeta2;

    /// <summary>τ: the step is η·m / (√v + τ).</summary>
    [Id(4)]
    public double Tau { get; init; } = DefaultTau;

    /// <summary>Null when the options are usable; otherwise which setting is wrong and why.</summary>
    public string? Problem()
    {
        if (ServerLearningRate is double rate && !(rate > 0 && double.IsFinite(rate)))
        {
            return $"{nameof(ServerLearningRate)} is {rate}: it must be positive and finite";
        }

        foreach (var (name, decay) in new[] { (nameof(Momentum), Momentum), (nameof(Beta1), Beta1), (nameof(Beta2), Beta2) })
        {
            if (!(decay >= 0 && decay < 1))
            {
                return $"{name} is {decay}: it must be at least 0 and below 1";
            }
        }

        if (!(Tau > 0 && double.IsFinite(Tau)))
        {
            return $"{nameof(Tau)} is {Tau}: it must be positive and finite";
        }

        return null;
    }
}
