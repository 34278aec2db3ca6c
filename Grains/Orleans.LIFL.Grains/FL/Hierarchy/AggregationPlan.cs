using System.Collections.Immutable;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL.Hierarchy;

/// <summary>
/// A round's aggregation hierarchy: which aggregators run where, and who hands up to whom. Plans made by
/// <see cref="AggregationPlanner"/> list the top first, then each level of middles, then the leaves, with
/// <c>Aggregators[i].Index == i</c>.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record AggregationPlan([property: Id(0)] ImmutableArray<PlannedAggregator> Aggregators)
{
    public int Count => Aggregators.IsDefault ? 0 : Aggregators.Length;

    public PlannedAggregator Top => Aggregators.Single(a => a.Role == AggregatorRole.Top);

    /// <summary>The aggregators that take client updates: the leaves, or the top alone in a flat plan.</summary>
    public ImmutableArray<PlannedAggregator> Leaves => Entries().ToImmutableArray();

    /// <summary>
    /// Levels from a leaf to the top, counting both: 1 for a flat plan, 2 for leaves → top, 3 for leaves → middles → top.
    /// </summary>
    public int Depth
    {
        get
        {
            if (Count == 0)
            {
                return 0;
            }

            var byIndex = Aggregators.ToDictionary(a => a.Index);
            var depth = 0;
            foreach (var entry in Entries())
            {
                var levels = 1;
                for (var current = entry; current.Parent != PlannedAggregator.NoParent && levels <= Count; levels++)
                {
                    current = byIndex[current.Parent];
                }

                depth = Math.Max(depth, levels);
            }

            return depth;
        }
    }

    /// <summary>
    /// The aggregators a client session on <paramref name="silo"/> sends its updates to: the leaves on that silo. A silo
    /// with none (it was not expected to receive, or <see cref="PlannerInputs.MaxLeaves"/> left it out) falls back to
    /// the leaves on <paramref name="node"/> when given, so the hand-off still stays in the node's memory, and then to
    /// every leaf. Never empty for a non-empty plan; a flat plan's answer is its top, wherever the session is.
    /// </summary>
    public ImmutableArray<PlannedAggregator> LeavesOn(string silo, string? node = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        // The leaves planned for that silo's updates: on it, or spilled next to it when it had no free core.
        var local = Entries().Where(a => (a.Serves ?? a.Silo) == silo).ToImmutableArray();
        if (!local.IsEmpty)
        {
            return local;
        }

        var sameNode = node is null ? [] : Entries().Where(a => a.Node == node).ToImmutableArray();
        return sameNode.IsEmpty ? Leaves : sameNode;
    }

    /// <summary>
    /// One aggregator that is the round's top and takes every update itself (the hierarchy's degenerate case, and the
    /// flat baseline LIFL is compared against).
    /// </summary>
    public static AggregationPlan Flat(string silo, string node)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(silo);
        ArgumentNullException.ThrowIfNull(node); // unknown ("") before the silo's first statistics arrive
        return new AggregationPlan([new PlannedAggregator(AggregatorRole.Top, 0, silo, node, PlannedAggregator.NoParent, [])]);
    }

    private IEnumerable<PlannedAggregator> Entries() => Count == 0 ? [] : Aggregators.Where(a => a.TakesUpdates);

    public bool Equals(AggregationPlan? other) => other is not null && Aggregators.AsSpan().SequenceEqual(other.Aggregators.AsSpan());

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var aggregator in Aggregators.AsSpan())
        {
            hash.Add(aggregator);
        }

        return hash.ToHashCode();
    }

    public override string ToString() => $"{Count} aggregators: {string.Join("; ", Aggregators.AsSpan().ToArray())}";
}
