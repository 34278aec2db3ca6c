using System.Collections.Immutable;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL.Hierarchy;

/// <summary>What <see cref="AggregationPlanner.Plan"/> sizes and places a round's aggregation hierarchy from.</summary>
/// <param name="Silos">The silos that may host aggregators, with the updates each expects.</param>
/// <param name="UpdateBytes">The size of one update.</param>
/// <param name="BytesPerSecondPerCore">The measured throughput of one aggregator on one core.</param>
/// <param name="ArrivalWindow">How long the round's updates take to arrive, from the round's start to the last one.</param>
/// <param name="FanOut">The most children a middle or top aggregator takes.</param>
/// <param name="MaxLeaves">A cap on the leaves (1 for a flat, single-aggregator ablation).</param>
[GenerateSerializer]
[Immutable]
public sealed record PlannerInputs(
    [property: Id(0)] ImmutableArray<SiloCapacity> Silos,
    [property: Id(1)] long UpdateBytes,
    [property: Id(2)] double BytesPerSecondPerCore,
    [property: Id(3)] TimeSpan ArrivalWindow,
    [property: Id(4)] int FanOut = PlannerInputs.DefaultFanOut,
    [property: Id(5)] int MaxLeaves = int.MaxValue)
{
    public const int DefaultFanOut = 8;

    /// <summary>Throws an <see cref="ArgumentException"/> whose parameter name is the bad field.</summary>
    internal void Validate()
    {
        if (Silos.IsDefaultOrEmpty)
        {
            throw new ArgumentException("Silos must hold at least one silo.", nameof(Silos));
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Silos.Length; i++)
        {
            var silo = Silos[i] ?? throw new ArgumentException($"Silos[{i}] is null.", nameof(Silos));
            var problem =
                string.IsNullOrWhiteSpace(silo.Silo) ? "Silo must be the silo's address"
                : string.IsNullOrWhiteSpace(silo.Node) ? "Node must be the silo's node"
                : silo.Cores <= 0 ? $"Cores must be positive, not {silo.Cores}"
                : !(silo.CpuLoad is >= 0 and <= 1) ? $"CpuLoad must be between 0 and 1, not {silo.CpuLoad}"
                : !(silo.ExpectedUpdates >= 0 && double.IsFinite(silo.ExpectedUpdates)) ? $"ExpectedUpdates must be zero or positive, and finite, not {silo.ExpectedUpdates}"
                : !names.Add(silo.Silo) ? $"Silo '{silo.Silo}' is listed twice"
                : null;
            if (problem is not null)
            {
                throw new ArgumentException($"Silos[{i}].{problem}.", nameof(Silos));
            }
        }

        if (UpdateBytes <= 0)
        {
            throw new ArgumentException($"UpdateBytes must be positive, not {UpdateBytes}.", nameof(UpdateBytes));
        }

        if (!(BytesPerSecondPerCore > 0 && double.IsFinite(BytesPerSecondPerCore)))
        {
            throw new ArgumentException($"BytesPerSecondPerCore must be positive and finite, not {BytesPerSecondPerCore}.", nameof(BytesPerSecondPerCore));
        }

        if (ArrivalWindow <= TimeSpan.Zero)
        {
            throw new ArgumentException($"ArrivalWindow must be positive, not {ArrivalWindow}.", nameof(ArrivalWindow));
        }

        if (FanOut < 2)
        {
            throw new ArgumentException($"FanOut must be at least 2, not {FanOut}.", nameof(FanOut));
        }

        if (MaxLeaves < 1)
        {
            throw new ArgumentException($"MaxLeaves must be at least 1, not {MaxLeaves}.", nameof(MaxLeaves));
        }
    }

    public bool Equals(PlannerInputs? other) =>
        other is not null
        && Silos.AsSpan().SequenceEqual(other.Silos.AsSpan())
        && UpdateBytes == other.UpdateBytes
        && BytesPerSecondPerCore.Equals(other.BytesPerSecondPerCore)
        && ArrivalWindow == other.ArrivalWindow
        && FanOut == other.FanOut
        && MaxLeaves == other.MaxLeaves;

    public override int GetHashCode() =>
        HashCode.Combine(Silos.IsDefault ? 0 : Silos.Length, UpdateBytes, BytesPerSecondPerCore, ArrivalWindow, FanOut, MaxLeaves);
}
