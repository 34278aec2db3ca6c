using System.Collections.Immutable;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL;

public enum JobPhase
{
    /// <summary>No job of that id has been created.</summary>
    None = 0,

    /// <summary>A round is open: selected clients train and submit updates.</summary>
    Collecting = 1,

    /// <summary>The round closed; its aggregate is being applied to the global model.</summary>
    Aggregating = 2,

    /// <summary>Every round was published.</summary>
    Completed = 3,
}

/// <summary>
/// One trainer's view of its job, what its session needs to tell it what to do next: a few fields whatever the number
/// of clients, where the job's whole status carries its selection and history (a hundred sessions waiting on a job
/// would otherwise each receive every client's id at every change).
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record TrainerView(
    [property: Id(0)] long Revision,
    [property: Id(1)] int Round,
    [property: Id(2)] int Epoch,
    [property: Id(3)] long ModelVersion,
    [property: Id(4)] JobPhase Phase,
    [property: Id(5)] bool Selected);

/// <summary>
/// What a job is doing now. <see cref="Revision"/> grows with every change, so that a caller can wait for the next
/// one (<see cref="IFlJobGrain.WaitForChange"/>).
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record JobStatus
{
    [Id(0)]
    public required string JobId { get; init; }

    [Id(1)]
    public long Revision { get; init; }

    [Id(2)]
    public JobPhase Phase { get; init; }

    /// <summary>The round being collected (1-based; 0 before the first).</summary>
    [Id(3)]
    public int Round { get; init; }

    /// <summary>
    /// Grows when the round's aggregator was lost (its silo died): updates acknowledged in an earlier epoch of this
    /// round must be sent again.
    /// </summary>
    [Id(4)]
    public int Epoch { get; init; }

    /// <summary>The version of the current global model (0: the initial one); the round's updates start from it.</summary>
    [Id(5)]
    public long ModelVersion { get; init; }

    /// <summary>The clients selected for the round.</summary>
    [Id(6)]
    public ImmutableArray<string> Selected { get; init; } = [];

    /// <summary>Updates in the round's aggregate so far.</summary>
    [Id(7)]
    public int Accepted { get; init; }

    [Id(8)]
    public int Goal { get; init; }

    [Id(9)]
    public DateTimeOffset? Deadline { get; init; }

    [Id(10)]
    public int AvailableClients { get; init; }

    /// <summary>Every round published so far.</summary>
    [Id(11)]
    public ImmutableArray<RoundMetrics> History { get; init; } = [];

    [Id(12)]
    public int Rounds { get; init; }

    [Id(13)]
    public string Algorithm { get; init; } = "";

    /// <summary>Grows with every change, accepted and refused updates included (see <see cref="IFlJobGrain.WaitForProgress"/>).</summary>
    [Id(14)]
    public long Progress { get; init; }

    /// <summary>Updates refused in the round so far.</summary>
    [Id(15)]
    public int Rejected { get; init; }

    /// <summary>The round's aggregation hierarchy now: each aggregator, its role, where it runs and what it took.</summary>
    [Id(16)]
    public ImmutableArray<AggregatorInfo> Aggregators { get; init; } = [];
}

/// <summary>One aggregator of a round's hierarchy.</summary>
/// <param name="Updates">The updates it took (leaves), as it last reported.</param>
[GenerateSerializer]
[Immutable]
public sealed record AggregatorInfo(
    [property: Id(0)] string Key,
    [property: Id(1)] Hierarchy.AggregatorRole Role,
    [property: Id(2)] string Silo,
    [property: Id(3)] int Updates);

/// <summary>What a published round did: how many updates were accepted and refused (by reason) and how long it took.</summary>
[GenerateSerializer]
[Immutable]
public sealed record RoundMetrics
{
    [Id(0)]
    public int Round { get; init; }

    /// <summary>The global model version the round published.</summary>
    [Id(1)]
    public long ModelVersion { get; init; }

    [Id(2)]
    public int Accepted { get; init; }

    [Id(3)]
    public int Rejected { get; init; }

    /// <summary>Refusals by <see cref="RejectionReason"/> name.</summary>
    [Id(4)]
    public SortedDictionary<string, int> RejectedByReason { get; init; } = [];

    /// <summary>From the round's start to its model being published.</summary>
    [Id(5)]
    public double RoundMilliseconds { get; init; }

    /// <summary>From the last update the round took (its close) to the global model being published.</summary>
    [Id(6)]
    public double AggregationMilliseconds { get; init; }

    /// <summary>Aggregators lost during the round (each forced a resend of what it held).</summary>
    [Id(7)]
    public int AggregatorsLost { get; init; }

    /// <summary>Whether the round closed at its deadline (with at least the minimum) rather than at its goal.</summary>
    [Id(8)]
    public bool ClosedAtDeadline { get; init; }

    [Id(9)]
    public DateTimeOffset PublishedAt { get; init; }

    /// <summary>With central DP: σ and the standard deviation of the noise added to this round's mean update.</summary>
    [Id(10)]
    public double? NoiseMultiplier { get; init; }

    [Id(11)]
    public double? NoiseStandardDeviation { get; init; }

    /// <summary>Test accuracy of the published model, when a trainer or the job's runner reported one.</summary>
    [Id(12)]
    public double? Accuracy { get; init; }

    /// <summary>FedBuff: the mean staleness of the buffered updates.</summary>
    [Id(13)]
    public double? MeanStaleness { get; init; }

    /// <summary>Aggregators in the round's hierarchy, and its levels (1: one aggregator; 2: leaves → top; 3: with middles).</summary>
    [Id(14)]
    public int Aggregators { get; init; }

    [Id(15)]
    public int HierarchyDepth { get; init; }

    /// <summary>Aggregators that needed a new activation, and those reused warm from an earlier round or job.</summary>
    [Id(16)]
    public int ColdStarts { get; init; }

    [Id(17)]
    public int WarmStarts { get; init; }

    /// <summary>CPU time the silos used during the round.</summary>
    [Id(18)]
    public double CpuSeconds { get; init; }

    /// <summary>Bytes the silos copied to move update and model bytes (streamed from other nodes), during the round.</summary>
    [Id(19)]
    public long BytesCopied { get; init; }

    /// <summary>The sum of the silos' peak resident memory during the round.</summary>
    [Id(20)]
    public long PeakMemoryBytes { get; init; }

    /// <summary>The hierarchy as it closed: where each aggregator ran.</summary>
    [Id(21)]
    public ImmutableArray<AggregatorInfo> Hierarchy { get; init; } = [];

    /// <summary>
    /// Parts of <see cref="AggregationMilliseconds"/>: the hierarchy finishing (last folds, partial aggregates handed
    /// up and combined), computing the next model from the round's sum, and storing that model (its version's grain).
    /// </summary>
    [Id(22)]
    public double FinishMilliseconds { get; init; }

    [Id(23)]
    public double StepMilliseconds { get; init; }

    [Id(24)]
    public double StoreMilliseconds { get; init; }
}
