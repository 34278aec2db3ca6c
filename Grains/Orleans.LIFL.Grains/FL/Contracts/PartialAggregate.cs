using System.Collections.Immutable;
using System.Numerics.Tensors;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL;

/// <summary>
/// What an aggregator hands up: the scaled sum of the updates it took, the sum of their weights, how many and
/// which. Sums and weights add, so partial aggregates of any split of a round's updates combine into the same
/// result as one flat aggregator (within float rounding): a hierarchy of aggregators is a tree of such sums. The
/// exception is algorithms that need every update at once (median, trimmed mean, Krum): their aggregators keep the
/// updates themselves (<see cref="Retained"/>) and only the top computes.
/// </summary>
[GenerateSerializer]
public sealed class PartialAggregate : IDisposable
{
    /// <summary>Σ scaleᵢ·Δᵢ in the model's flat layout; null when nothing was summed.</summary>
    [Id(0)]
    public SharedBuffer? Sum { get; set; }

    /// <summary>Σ weightᵢ: the denominator of the mean.</summary>
    [Id(1)]
    public double TotalWeight { get; set; }

    [Id(2)]
    public int Count { get; set; }

    [Id(3)]
    public List<string> UpdateIds { get; set; } = [];

    /// <summary>The updates themselves, for algorithms that cannot be split (in the order of <see cref="UpdateIds"/>).</summary>
    [Id(4)]
    public List<SharedBuffer> Retained { get; set; } = [];

    /// <summary>Σ stalenessᵢ of the updates (FedBuff's report).</summary>
    [Id(5)]
    public double TotalStaleness { get; set; }

    /// <summary>Every aggregator whose updates are in this aggregate, with its activation and count: the job checks them against what it was told.</summary>
    [Id(6)]
    public ImmutableArray<AggregateSource> Sources { get; set; } = [];

    /// <summary>Seconds the accumulate kernel ran for the updates in this aggregate (its measured throughput).</summary>
    [Id(7)]
    public double AccumulateSeconds { get; set; }

    [Id(8)]
    public long AccumulatedBytes { get; set; }

    /// <summary>
    /// Further sums that, added to <see cref="Sum"/>, make this aggregate's: a parent hands its children's sums up
    /// without adding them, so whoever reads the aggregate adds them all in its own single pass (the job does, in the
    /// server step) instead of a pass over the model per level of the hierarchy.
    /// </summary>
    [Id(9)]
    public List<SharedBuffer> PartSums { get; set; } = [];

    /// <summary>
    /// <see cref="Sum"/> and <see cref="PartSums"/>, in the order they add: what a reader sums (the first, then each
    /// other added to it, gives exactly what adding them up the tree would have).
    /// </summary>
    public IEnumerable<SharedBuffer> Sums => Sum is null ? PartSums : PartSums.Prepend(Sum);

    /// <summary>Adds <see cref="PartSums"/> into <see cref="Sum"/> (in place: this aggregate owns them), for readers that need one sum.</summary>
    public void Flatten()
    {
        if (PartSums.Count == 0)
        {
            return;
        }

        var start = 0;
        if (Sum is null)
        {
            Sum = PartSums[0];
            start = 1;
        }

        for (var i = start; i < PartSums.Count; i++)
        {
            using var part = PartSums[i];
            part.Prefault(forWrite: false);
            TensorPrimitives.Add(Sum.AsSpan<float>(), part.AsSpan<float>(), Sum.AsSpan<float>());
        }

        PartSums.Clear();
    }

    /// <summary>Releases the buffers this object holds references to.</summary>
    public void Dispose()
    {
        Sum?.Dispose();
        Sum = null;
        foreach (var part in PartSums)
        {
            part.Dispose();
        }

        PartSums.Clear();
        foreach (var buffer in Retained)
        {
            buffer.Dispose();
        }

        Retained.Clear();
    }
}

/// <summary>An aggregator's contribution to an aggregate: which activation, and how many updates.</summary>
[GenerateSerializer]
[Immutable]
public sealed record AggregateSource([property: Id(0)] string Aggregator, [property: Id(1)] Guid Incarnation, [property: Id(2)] int Count);

/// <summary>One update as its client session passes it to an aggregator, with how it counts.</summary>
[GenerateSerializer]
public sealed record AggregationInput
{
    [Id(0)]
    public required string UpdateId { get; init; }

    /// <summary>XxHash3 of the update's bytes: the same id with other bytes is a different update.</summary>
    [Id(1)]
    public ulong Checksum { get; init; }

    /// <summary>What the update is multiplied by in the sum (examples; × staleness weight for FedBuff; the clip factor with DP).</summary>
    [Id(2)]
    public double Scale { get; init; }

    /// <summary>What the update adds to the denominator (examples; × staleness weight for FedBuff; 1 with DP).</summary>
    [Id(3)]
    public double Weight { get; init; }

    /// <summary>Keep the update itself instead of summing it (median, trimmed mean, Krum).</summary>
    [Id(4)]
    public bool Retain { get; init; }

    [Id(5)]
    public long Staleness { get; init; }
}

/// <summary>Where a client session sends an update of the round: a leaf aggregator of the round's current epoch, on its silo if there is one.</summary>
[GenerateSerializer]
public sealed record AggregationLease(
    [property: Id(0)] int Round,
    [property: Id(1)] int Epoch,
    [property: Id(2)] string Aggregator,
    [property: Id(3)] long Staleness,
    [property: Id(4)] string Assignment);
