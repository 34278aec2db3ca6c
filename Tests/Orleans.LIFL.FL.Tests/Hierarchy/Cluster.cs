using System.Collections.Immutable;
using Orleans.LIFL.Grains.FL.Hierarchy;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Hierarchy;

/// <summary>Simulated clusters for the planner, and the shape every plan must have.</summary>
internal static class Cluster
{
    public static SiloCapacity Silo(string silo, string node, int cores, double expected = 0, double load = 0) =>
        new(silo, node, cores, load, expected);

    /// <summary>Inputs where one aggregator handles one update per second and the window is one second: L = ⌈N⌉ before caps.</summary>
    public static PlannerInputs Inputs(params SiloCapacity[] silos) =>
        new([.. silos], UpdateBytes: 1_000, BytesPerSecondPerCore: 1_000, ArrivalWindow: TimeSpan.FromSeconds(1));

    /// <summary>Inputs whose work needs <paramref name="leaves"/> leaves by the formula, whatever N is (1 when none is expected).</summary>
    public static PlannerInputs Needing(int leaves, params SiloCapacity[] silos)
    {
        var updates = silos.Sum(s => s.ExpectedUpdates);
        updates = updates > 0 ? updates : 1;
        return new PlannerInputs([.. silos], UpdateBytes: 1_000, BytesPerSecondPerCore: updates * 1_000 / leaves, ArrivalWindow: TimeSpan.FromSeconds(1));
    }

    public static int LeafCount(this AggregationPlan plan, string silo) =>
        plan.Aggregators.Count(a => a.Role == AggregatorRole.Leaf && a.Silo == silo);

    public static int LeafCountOnNode(this AggregationPlan plan, string node) =>
        plan.Aggregators.Count(a => a.Role == AggregatorRole.Leaf && a.Node == node);

    public static ImmutableArray<PlannedAggregator> OfRole(this AggregationPlan plan, AggregatorRole role) =>
        [.. plan.Aggregators.Where(a => a.Role == role)];

    /// <summary>
    /// Indices 0..n−1 in order, one top without a parent, parent and children agreeing, leaves childless and at the
    /// plan's depth, every internal aggregator with 1..fanOut children, and every aggregator reaching the top.
    /// </summary>
    public static void AssertWellFormed(AggregationPlan plan, int fanOut)
    {
        var aggregators = plan.Aggregators;
        Assert.NotEmpty(aggregators);
        Assert.Equal(Enumerable.Range(0, aggregators.Length), aggregators.Select(a => a.Index));
        var top = Assert.Single(aggregators, a => a.Role == AggregatorRole.Top);
        Assert.Equal(PlannedAggregator.NoParent, top.Parent);
        foreach (var aggregator in aggregators)
        {
            if (aggregator.Role != AggregatorRole.Top)
            {
                Assert.InRange(aggregator.Parent, 0, aggregators.Length - 1);
                Assert.Contains(aggregator.Index, aggregators[aggregator.Parent].Children);
            }

            foreach (var child in aggregator.Children)
            {
                Assert.Equal(aggregator.Index, aggregators[child].Parent);
            }

            Assert.Equal(aggregator.Children.Length, aggregator.Children.Distinct().Count());
            if (aggregator.Role == AggregatorRole.Leaf)
            {
                Assert.Empty(aggregator.Children);
            }
            else if (aggregators.Length > 1)
            {
                Assert.InRange(aggregator.Children.Length, 1, fanOut);
                Assert.All(aggregator.Children, child => Assert.NotEqual(AggregatorRole.Top, aggregators[child].Role));
            }

            var levels = 1;
            for (var current = aggregator; current.Parent != PlannedAggregator.NoParent; current = aggregators[current.Parent])
            {
                levels++;
                Assert.True(levels <= aggregators.Length, $"#{aggregator.Index} does not reach the top: {plan}");
            }

            if (aggregator.TakesUpdates)
            {
                Assert.Equal(plan.Depth, levels);
            }
        }

        Assert.Equal(aggregators.Length == 1 ? [top] : plan.OfRole(AggregatorRole.Leaf), plan.Leaves);
    }
}
