using System.Collections.Immutable;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL.Hierarchy;

/// <summary>One aggregator of a round's plan: its role, where it runs and its place in the tree.</summary>
/// <param name="Index">Unique within the plan; <see cref="Parent"/> and <see cref="Children"/> refer to it.</param>
/// <param name="Parent">The index of the aggregator it hands its partial aggregate to; <see cref="NoParent"/> for the top.</param>
/// <param name="Children">The aggregators whose partial aggregates it combines; empty for one that takes updates.</param>
[GenerateSerializer]
[Immutable]
public sealed record PlannedAggregator(
    [property: Id(0)] AggregatorRole Role,
    [property: Id(1)] int Index,
    [property: Id(2)] string Silo,
    [property: Id(3)] string Node,
    [property: Id(4)] int Parent,
    [property: Id(5)] ImmutableArray<int> Children)
{
    public const int NoParent = -1;

    /// <summary>The silo whose updates a leaf takes when it runs elsewhere (its own silo had no free core); null: its own.</summary>
    [Id(6)]
    public string? Serves { get; init; }

    /// <summary>Client updates go to it: a leaf, or the top of a flat plan (which has no children).</summary>
    public bool TakesUpdates => Children.IsDefaultOrEmpty;

    public bool Equals(PlannedAggregator? other) =>
        other is not null
        && Role == other.Role
        && Index == other.Index
        && Silo == other.Silo
        && Node == other.Node
        && Parent == other.Parent
        && Serves == other.Serves
        && Children.AsSpan().SequenceEqual(other.Children.AsSpan());

    public override int GetHashCode() => HashCode.Combine(Role, Index, Silo, Node, Parent, Children.IsDefault ? 0 : Children.Length);

    public override string ToString() =>
        $"{Role} #{Index} on {Silo} ({Node})"
        + (Serves is null ? "" : $" for {Serves}")
        + (Parent == NoParent ? "" : $" → #{Parent}")
        + (TakesUpdates ? "" : $" ← [{string.Join(", ", Children)}]");
}
