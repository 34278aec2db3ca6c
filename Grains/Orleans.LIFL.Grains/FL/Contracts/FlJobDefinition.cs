using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL;

/// <summary>
/// A federated-learning job: the model, the server algorithm and its parameters, how many rounds, how many clients
/// take part in each and when a round closes. The initial global model comes with <see cref="IFlJobGrain.Create"/>.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record FlJobDefinition
{
    /// <summary>The algorithms a job may name (case-insensitive).</summary>
    public static readonly IReadOnlyList<string> Algorithms =
        ["fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad", "fedprox", "fedbuff", "median", "trimmedmean", "krum"];

    [Id(0)]
    public required ModelSpec Model { get; init; }

    /// <summary>One of <see cref="Algorithms"/>.</summary>
    [Id(1)]
    public string Algorithm { get; init; } = "fedavg";

    [Id(2)]
    public AlgorithmSettings Settings { get; init; } = new();

    /// <summary>Rounds to run (FedBuff: model versions to publish).</summary>
    [Id(3)]
    public int Rounds { get; init; } = 10;

    /// <summary>Clients selected per round, uniformly among the available ones (FedBuff: clients training at once).</summary>
    [Id(4)]
    public int ClientsPerRound { get; init; } = 10;

    /// <summary>Updates without which a round does not close, even at its deadline (it waits and selects more clients).</summary>
    [Id(5)]
    public int MinUpdates { get; init; } = 1;

    /// <summary>Updates at which a round closes at once (at most <see cref="ClientsPerRound"/>).</summary>
    [Id(6)]
    public int GoalUpdates { get; init; } = 10;

    /// <summary>Time from a round's start after which it closes with what it has (if at least <see cref="MinUpdates"/>).</summary>
    [Id(7)]
    public TimeSpan RoundDeadline { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Updates whose L2 norm exceeds this are refused (null: no bound).</summary>
    [Id(8)]
    public double? MaxUpdateNorm { get; init; }

    /// <summary>Seeds client selection (reproducible) and the DP noise.</summary>
    [Id(9)]
    public int Seed { get; init; }

    /// <summary>What trainers are asked to do locally each round.</summary>
    [Id(10)]
    public TrainingSettings Training { get; init; } = new();

    /// <summary>
    /// Clients that must be available before a round selects (0: <see cref="ClientsPerRound"/>); more gives the
    /// uniform sampling more to choose from. At the round's deadline it selects from whoever is there.
    /// </summary>
    [Id(11)]
    public int MinAvailableClients { get; init; }

    /// <summary>How the round's updates are aggregated: LIFL's hierarchy, eagerness, locality and warm reuse, each of which can be turned off.</summary>
    [Id(12)]
    public AggregationSettings Aggregation { get; init; } = new();

    /// <summary>The published models a job keeps by default: the latest and the two before it.</summary>
    public const int DefaultKeepModels = 3;

    /// <summary>
    /// How many of the latest published model versions stay stored and readable (0: every version). Older ones are
    /// deleted as new ones are published. FedBuff keeps at least MaxStaleness + 1, the versions its trainers may
    /// still be training from.
    /// </summary>
    [Id(13)]
    public int KeepModels { get; init; } = DefaultKeepModels;

    /// <summary>The canonical algorithm name.</summary>
    public string AlgorithmName => Algorithm.Trim().ToLowerInvariant();

    public bool IsAsynchronous => AlgorithmName == "fedbuff";

    /// <summary>Median, trimmed mean and Krum need every update at once: they cannot be split across aggregators.</summary>
    public bool NeedsEveryUpdate => AlgorithmName is "median" or "trimmedmean" or "krum";

    /// <summary>The oldest version kept once <paramref name="latest"/> is published.</summary>
    public long OldestKeptModel(long latest)
    {
        if (KeepModels == 0)
        {
            return 0;
        }

        var kept = IsAsynchronous ? Math.Max(KeepModels, (long)Settings.MaxStaleness + 1) : KeepModels;
        return Math.Max(0, latest - kept + 1);
    }

    /// <summary>Null when the definition is usable; otherwise what is wrong with it, naming the setting.</summary>
    public string? Problem()
    {
        if (Model is null)
        {
            return "Model is missing";
        }

        if (Model.Problem() is { } model)
        {
            return $"Model: {model}";
        }

        if (!Algorithms.Contains(AlgorithmName))
        {
            return $"Algorithm '{Algorithm}' is not one of {string.Join(", ", Algorithms)}";
        }

        if (Rounds < 1)
        {
            return $"Rounds is {Rounds}; it must be at least 1";
        }

        if (ClientsPerRound < 1)
        {
            return $"ClientsPerRound is {ClientsPerRound}; it must be at least 1";
        }

        if (MinUpdates < 1 || MinUpdates > GoalUpdates)
        {
            return $"MinUpdates is {MinUpdates}; it must be between 1 and GoalUpdates ({GoalUpdates})";
        }

        if (!IsAsynchronous && GoalUpdates > ClientsPerRound)
        {
            return $"GoalUpdates is {GoalUpdates}; it cannot exceed ClientsPerRound ({ClientsPerRound})";
        }

        if (KeepModels < 0)
        {
            return $"KeepModels is {KeepModels}; it must be 0 (every version) or more";
        }

        if (MinAvailableClients < 0)
        {
            return $"MinAvailableClients is {MinAvailableClients}; it must be 0 (ClientsPerRound) or more";
        }

        if (RoundDeadline <= TimeSpan.Zero)
        {
            return $"RoundDeadline is {RoundDeadline}; it must be positive";
        }

        if (MaxUpdateNorm is <= 0 || MaxUpdateNorm is double.NaN)
        {
            return $"MaxUpdateNorm is {MaxUpdateNorm}; it must be positive (or unset)";
        }

        if (AlgorithmName == "krum" && GoalUpdates < (2 * Settings.KrumByzantine) + 3)
        {
            return $"Krum with KrumByzantine={Settings.KrumByzantine} needs GoalUpdates of at least {(2 * Settings.KrumByzantine) + 3}";
        }

        if (AlgorithmName == "trimmedmean" && Settings.TrimFraction is < 0 or >= 0.5)
        {
            return $"TrimFraction is {Settings.TrimFraction}; it must be in [0, 0.5)";
        }

        if (IsAsynchronous && (Settings.BufferSize < 1 || Settings.MaxStaleness < 0))
        {
            return $"FedBuff needs BufferSize ≥ 1 and MaxStaleness ≥ 0 (they are {Settings.BufferSize} and {Settings.MaxStaleness})";
        }

        if (Settings.DpClipNorm is { } clip && (clip <= 0 || double.IsNaN(clip) || Settings.DpNoiseMultiplier < 0))
        {
            return $"DpClipNorm must be positive and DpNoiseMultiplier non-negative (they are {clip} and {Settings.DpNoiseMultiplier})";
        }

        if (Settings.DpClipNorm is not null && NeedsEveryUpdate)
        {
            return $"central differential privacy is not combined with {AlgorithmName}";
        }

        return Aggregation.Problem() ?? Training.Problem();
    }
}

/// <summary>The parameters of the server algorithms; each uses the ones that concern it.</summary>
[GenerateSerializer]
[Immutable]
public sealed record AlgorithmSettings
{
    /// <summary>η. Null: the algorithm's default (1 for FedAvg and FedAvgM, 0.1 for the adaptive ones).</summary>
    [Id(0)]
    public double? ServerLearningRate { get; init; }

    /// <summary>β of FedAvgM.</summary>
    [Id(1)]
    public double Momentum { get; init; } = 0.9;

    [Id(2)]
    public double Beta1 { get; init; } = 0.9;

    [Id(3)]
    public double Beta2 { get; init; } = 0.99;

    /// <summary>τ, the adaptivity of FedAdam, FedYogi and FedAdagrad.</summary>
    [Id(4)]
    public double Tau { get; init; } = 1e-3;

    /// <summary>μ of FedProx's proximal term, applied by the trainers (the server runs FedAvg).</summary>
    [Id(5)]
    public double ProximalMu { get; init; } = 0.01;

    /// <summary>The fraction trimmed from each end per coordinate (trimmed mean).</summary>
    [Id(6)]
    public double TrimFraction { get; init; } = 0.1;

    /// <summary>f, the Byzantine clients Krum tolerates.</summary>
    [Id(7)]
    public int KrumByzantine { get; init; } = 1;

    /// <summary>m, the updates Multi-Krum averages (0: n − f).</summary>
    [Id(8)]
    public int KrumSelected { get; init; }

    /// <summary>K: FedBuff publishes a model every K updates.</summary>
    [Id(9)]
    public int BufferSize { get; init; } = 10;

    /// <summary>FedBuff refuses updates based on a model more than this many versions old.</summary>
    [Id(10)]
    public int MaxStaleness { get; init; } = 10;

    /// <summary>C: with central differential privacy, each update is clipped to this L2 norm (null: no DP).</summary>
    [Id(11)]
    public double? DpClipNorm { get; init; }

    /// <summary>σ: the Gaussian noise added to the mean has standard deviation σ·C / (updates in the round).</summary>
    [Id(12)]
    public double DpNoiseMultiplier { get; init; } = 1.0;
}

/// <summary>LIFL's aggregation (each feature can be turned off, for comparison).</summary>
[GenerateSerializer]
[Immutable]
public sealed record AggregationSettings
{
    public const double DefaultBytesPerSecondPerCore = 4e9;
    public static readonly TimeSpan DefaultWarmWindow = TimeSpan.FromMinutes(5);

    /// <summary>A hierarchy sized to the round (leaf → middle → top) instead of one aggregator.</summary>
    [Id(0)]
    public bool Hierarchical { get; init; } = true;

    /// <summary>Fold each update in on arrival; false keeps them and sums at the close (lazy).</summary>
    [Id(1)]
    public bool Eager { get; init; } = true;

    /// <summary>Leaves on the silos where updates land, subtrees packed per node; false places aggregators anywhere.</summary>
    [Id(2)]
    public bool LocalityAware { get; init; } = true;

    /// <summary>How long an aggregator stays active after a round for the next one (of any job); zero: a cold start every round.</summary>
    [Id(3)]
    public TimeSpan WarmWindow { get; init; } = DefaultWarmWindow;

    /// <summary>Children per middle or top aggregator at most.</summary>
    [Id(4)]
    public int FanOut { get; init; } = 8;

    /// <summary>The aggregation throughput of one core assumed before the aggregators measured theirs.</summary>
    [Id(5)]
    public double BytesPerSecondPerCore { get; init; } = DefaultBytesPerSecondPerCore;

    public string? Problem() =>
        FanOut < 2 ? $"Aggregation.FanOut is {FanOut}; it must be at least 2"
        : WarmWindow < TimeSpan.Zero ? $"Aggregation.WarmWindow is {WarmWindow}; it must not be negative"
        : !(BytesPerSecondPerCore > 0) || double.IsInfinity(BytesPerSecondPerCore) ? $"Aggregation.BytesPerSecondPerCore is {BytesPerSecondPerCore}; it must be positive"
        : null;
}

/// <summary>What trainers do locally each round (they may ignore it; the example trainers follow it).</summary>
[GenerateSerializer]
[Immutable]
public sealed record TrainingSettings
{
    [Id(0)]
    public int Epochs { get; init; } = 1;

    [Id(1)]
    public int BatchSize { get; init; } = 32;

    [Id(2)]
    public double LearningRate { get; init; } = 0.05;

    public string? Problem() =>
        Epochs < 1 ? $"Training.Epochs is {Epochs}; it must be at least 1"
        : BatchSize < 1 ? $"Training.BatchSize is {BatchSize}; it must be at least 1"
        : LearningRate <= 0 || double.IsNaN(LearningRate) ? $"Training.LearningRate is {LearningRate}; it must be positive"
        : null;
}
