using FsCheck;
using FsCheck.Fluent;
using Orleans.LIFL.Grains.FL.Hierarchy;
using Xunit;
using static Orleans.LIFL.FL.Tests.Hierarchy.Cluster;

namespace Orleans.LIFL.FL.Tests.Hierarchy;

/// <summary>The planner's rules hold on random clusters, not just the hand-built ones.</summary>
public sealed class AggregationPlannerPropertyTests
{
    private static readonly double[] Loads = [0, 0, 0.25, 0.5, 0.9, 1.0];
    private static readonly double[] Expectations = [0, 0, 0, 1, 2.5, 10, 50];
    private static readonly int[] Caps = [1, 2, 5, int.MaxValue, int.MaxValue];

    /// <summary>
    /// On 1–4 nodes of 1–3 silos with random cores, loads and expected updates: the tree is well formed; the leaves are
    /// max(receiving silos, L) (fewer only when the cores run out), each receiving silo has one unless MaxLeaves forbids,
    /// a silo expecting nothing hosts a leaf only when some receiving silo is full; middles exist exactly when the leaves
    /// outnumber FanOut and sit on their leaves' node; the top is on a node with the most leaves; input order is irrelevant.
    /// </summary>
    [Fact]
    public void Plans_keep_the_rules_on_random_clusters()
    {
        Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), seed =>
        {
            var random = new Random(seed);
            var silos = new List<SiloCapacity>();
            for (var node = random.Next(1, 5); node > 0; node--)
            {
                for (var silo = random.Next(1, 4); silo > 0; silo--)
                {
                    silos.Add(Silo($"s{node}{silo}", $"n{node}", random.Next(1, 17), Expectations[random.Next(Expectations.Length)], Loads[random.Next(Loads.Length)]));
                }
            }

            var inputs = Needing(random.Next(1, 41), [.. silos]) with { FanOut = random.Next(2, 9), MaxLeaves = Caps[random.Next(Caps.Length)] };
            var plan = AggregationPlanner.Plan(inputs);

            AssertWellFormed(plan, inputs.FanOut);
            Assert.Equal(plan, AggregationPlanner.Plan(inputs with { Silos = [.. silos.OrderBy(_ => random.Next())] }));

            var receiving = silos.Any(s => s.ExpectedUpdates > 0) ? silos.Where(s => s.ExpectedUpdates > 0).ToList() : silos;
            var needed = AggregationPlanner.LeavesNeeded(inputs);
            var target = Math.Max(Math.Min(receiving.Count, inputs.MaxLeaves), needed);
            var slots = silos.Sum(s => Math.Floor(s.FreeCores + 1e-6));
            var leaves = plan.Leaves;
            Assert.InRange(leaves.Length, 1, target);
            if (slots >= needed)
            {
                Assert.Equal(target, leaves.Length);
            }

            if (receiving.Count <= inputs.MaxLeaves)
            {
                Assert.All(receiving, s => Assert.All(plan.LeavesOn(s.Silo), leaf => Assert.Equal(s.Silo, leaf.Serves ?? leaf.Silo)));
                Assert.All(receiving, s => Assert.Contains(plan.LeavesOn(s.Silo), leaf => leaf.Silo == s.Silo));
            }
            else
            {
                Assert.Equal(inputs.MaxLeaves, leaves.Select(l => l.Silo).Distinct().Count());
            }

            if (leaves.Any(l => !receiving.Any(s => s.Silo == l.Silo)))
            {
                Assert.Contains(receiving, s => plan.LeafCount(s.Silo) >= Math.Max(1, Math.Floor(s.FreeCores + 1e-6)));
            }

            var middles = plan.OfRole(AggregatorRole.Middle);
            Assert.Equal(leaves.Length > inputs.FanOut, !middles.IsEmpty);
            Assert.All(
                middles.Where(m => plan.Aggregators[m.Children[0]].Role == AggregatorRole.Leaf),
                middle => Assert.All(middle.Children, child => Assert.Equal(middle.Node, plan.Aggregators[child].Node)));
            if (leaves.Length > 1)
            {
                Assert.Equal(leaves.GroupBy(l => l.Node).Max(g => g.Count()), plan.LeafCountOnNode(plan.Top.Node));
            }
        }).QuickCheckThrowOnFailure();
    }
}
