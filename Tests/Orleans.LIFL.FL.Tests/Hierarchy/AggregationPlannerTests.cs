using Orleans.LIFL.Grains.FL.Hierarchy;
using Xunit;
using static Orleans.LIFL.FL.Tests.Hierarchy.Cluster;

namespace Orleans.LIFL.FL.Tests.Hierarchy;

/// <summary>The planner sizes a round's hierarchy precisely, keeps updates local, packs by best fit and spills only when full.</summary>
public sealed class AggregationPlannerTests
{
    /// <summary>L = ⌈N × size / (throughput × window)⌉, capped by ⌈N⌉: one silo with cores to spare hosts exactly that many leaves.</summary>
    [Theory]
    [InlineData(40, 10_000_000, 20_000_000, 4.0, 5)]
    [InlineData(40, 10_000_000, 20_000_000, 3.0, 7)]
    [InlineData(40, 10_000_000, 100_000_000, 4.0, 1)]
    [InlineData(40, 10_000_000, 10_000_000, 0.5, 40)]
    [InlineData(2.5, 1_000_000_000, 1, 1.0, 3)]
    [InlineData(10, 1_000, 1_000, 1.0, 10)]
    [InlineData(12, 1_000, 4_000, 1.0, 3)]
    public void Leaf_count_is_the_work_over_what_one_leaf_does_in_the_window(double updates, long updateBytes, double bytesPerSecondPerCore, double windowSeconds, int leaves)
    {
        var inputs = new PlannerInputs([Silo("s1", "n1", 64, updates)], updateBytes, bytesPerSecondPerCore, TimeSpan.FromSeconds(windowSeconds));

        var plan = AggregationPlanner.Plan(inputs);

        Assert.Equal(leaves, AggregationPlanner.LeavesNeeded(inputs));
        Assert.Equal(leaves, plan.Leaves.Length);
        Assert.All(plan.Leaves, leaf => Assert.Equal("s1", leaf.Silo));
        Assert.Equal(leaves == 1 ? 1 : leaves <= inputs.FanOut ? 2 : 3, plan.Depth);
        AssertWellFormed(plan, inputs.FanOut);
    }

    /// <summary>However much work there is, the leaves stop at the free cores (⌊Σ Cores·(1 − load)⌋), and a saturated silo still hosts one.</summary>
    [Theory]
    [InlineData(8, 0.75, 2)]
    [InlineData(8, 0.0, 8)]
    [InlineData(3, 0.5, 1)]
    [InlineData(4, 1.0, 1)]
    public void Leaves_never_outnumber_the_free_cores(int cores, double load, int leaves)
    {
        var plan = AggregationPlanner.Plan(Needing(1_000, Silo("s1", "n1", cores, expected: 100, load: load)));

        Assert.Equal(leaves, plan.Leaves.Length);
        AssertWellFormed(plan, PlannerInputs.DefaultFanOut);
    }

    /// <summary>The receiving silos' own leaves count against the free cores; an extra leaf that finds no whole free core anywhere is left out.</summary>
    [Fact]
    public void A_leaf_with_no_free_core_anywhere_is_left_out()
    {
        var inputs = Needing(1_000, Silo("s1", "n1", 3, expected: 50, load: 0.5), Silo("s2", "n2", 3, expected: 50, load: 0.5));

        var plan = AggregationPlanner.Plan(inputs);

        Assert.Equal(3, AggregationPlanner.LeavesNeeded(inputs));
        Assert.Equal(["s1", "s2"], plan.Leaves.Select(l => l.Silo));
    }

    /// <summary>MaxLeaves = 1 is the flat ablation: one top, on the silo expecting the most updates (ties by name), taking every session's updates.</summary>
    [Fact]
    public void MaxLeaves_of_one_gives_a_flat_plan()
    {
        var inputs = Inputs(Silo("a", "n1", 8, 5), Silo("c", "n2", 8, 9), Silo("b", "n1", 8, 9)) with { MaxLeaves = 1 };

        var plan = AggregationPlanner.Plan(inputs);

        Assert.Equal(AggregationPlan.Flat("b", "n1"), plan);
        Assert.Equal((1, 1), (plan.Count, plan.Depth));
        Assert.Equal([plan.Top], plan.Leaves);
        Assert.Equal([plan.Top], plan.LeavesOn("a"));
        Assert.Equal([plan.Top], plan.LeavesOn("elsewhere", "n9"));
        AssertWellFormed(plan, inputs.FanOut);
    }

    /// <summary>A MaxLeaves cap below the receiving silos keeps the busiest ones; the others' sessions use a leaf of their node.</summary>
    [Fact]
    public void MaxLeaves_below_the_receiving_silos_keeps_the_busiest()
    {
        var inputs = Inputs(Silo("a", "n1", 8, 5), Silo("b", "n1", 8, 9), Silo("c", "n2", 8, 9)) with { MaxLeaves = 2 };

        var plan = AggregationPlanner.Plan(inputs);

        Assert.Equal(["b", "c"], plan.Leaves.Select(l => l.Silo));
        Assert.Equal("b", Assert.Single(plan.LeavesOn("a", "n1")).Silo);
        AssertWellFormed(plan, inputs.FanOut);
    }

    /// <summary>
    /// Every silo expecting updates hosts a leaf even when the work needs only one; sessions there send to it, and a
    /// silo expecting none hosts none and sends to its node's leaf, or to any leaf.
    /// </summary>
    [Fact]
    public void Every_receiving_silo_hosts_a_leaf()
    {
        var plan = AggregationPlanner.Plan(Needing(1,
            Silo("s1", "n1", 8, expected: 10), Silo("s2", "n1", 8),
            Silo("s3", "n2", 8, expected: 1), Silo("s4", "n2", 8)));

        Assert.Equal((1, 1, 0, 0), (plan.LeafCount("s1"), plan.LeafCount("s3"), plan.LeafCount("s2"), plan.LeafCount("s4")));
        Assert.Equal("s1", Assert.Single(plan.LeavesOn("s1")).Silo);
        Assert.Equal("s3", Assert.Single(plan.LeavesOn("s3")).Silo);
        Assert.Equal("s1", Assert.Single(plan.LeavesOn("s2", "n1")).Silo);
        Assert.Equal(plan.Leaves, plan.LeavesOn("s4"));

        // Both nodes have one leaf; n1 expects more updates; of its silos s2 has the most left after s1's leaf.
        Assert.Equal(("s2", 2, 3), (plan.Top.Silo, plan.Depth, plan.Count));
        AssertWellFormed(plan, PlannerInputs.DefaultFanOut);
    }

    /// <summary>With nothing expected anywhere, each silo is treated as expecting an even share of one update, so each has a leaf to send to.</summary>
    [Fact]
    public void With_no_expected_updates_every_silo_hosts_a_leaf()
    {
        var plan = AggregationPlanner.Plan(Inputs(Silo("s1", "n1", 4), Silo("s2", "n1", 4), Silo("s3", "n2", 4)));

        Assert.Equal(["s1", "s2", "s3"], plan.Leaves.Select(l => l.Silo));
        Assert.All(new[] { "s1", "s2", "s3" }, silo => Assert.Equal(silo, Assert.Single(plan.LeavesOn(silo)).Silo));
        AssertWellFormed(plan, PlannerInputs.DefaultFanOut);
    }

    /// <summary>The round's leaves are shared in proportion to the expected updates: 20 at 60:40 are 12 and 8.</summary>
    [Fact]
    public void Leaves_follow_the_expected_updates()
    {
        var plan = AggregationPlanner.Plan(Needing(20, Silo("s1", "n1", 32, 60), Silo("s2", "n2", 32, 40)));

        Assert.Equal((12, 8), (plan.LeafCount("s1"), plan.LeafCount("s2")));
    }

    /// <summary>
    /// A silo whose share is under one leaf gets one and the rest is shared by largest remainder among the others:
    /// 10 leaves at 90:9:1 are 1 for c (0.1), then 9 at 90:9 (8.2, 0.8) 1 for b, then 8 for a; 16:4 with 5 leaves is 4:1.
    /// </summary>
    [Theory]
    [InlineData(10, 90, 9, 1, 8, 1, 1)]
    [InlineData(5, 16, 4, 0, 4, 1, 0)]
    [InlineData(7, 10, 10, 10, 3, 2, 2)]
    [InlineData(3, 10, 10, 10, 1, 1, 1)]
    public void Leaves_are_shared_by_largest_remainder_with_one_each(int needed, double a, double b, double c, int onA, int onB, int onC)
    {
        var plan = AggregationPlanner.Plan(Needing(needed, Silo("a", "n1", 16, a), Silo("b", "n2", 16, b), Silo("c", "n3", 16, c)));

        Assert.Equal((onA, onB, onC), (plan.LeafCount("a"), plan.LeafCount("b"), plan.LeafCount("c")));
    }

    /// <summary>
    /// Node A: a1 (4 cores, every update), a2 (2 cores); node B: b1 (8 cores). Extra leaves fill a1, then a2 on the same
    /// node, and only then b1; the top stays on A, which has the most leaves.
    /// </summary>
    [Theory]
    [InlineData(3, 3, 0, 0)]
    [InlineData(4, 4, 0, 0)]
    [InlineData(5, 4, 1, 0)]
    [InlineData(6, 4, 2, 0)]
    [InlineData(7, 4, 2, 1)]
    [InlineData(9, 4, 2, 3)]
    public void Leaves_fill_the_receiving_silo_then_its_node_then_another_node(int needed, int onA1, int onA2, int onB1)
    {
        var inputs = Needing(needed, Silo("a1", "A", 4, expected: 100), Silo("a2", "A", 2), Silo("b1", "B", 8));

        var plan = AggregationPlanner.Plan(inputs);

        Assert.Equal((onA1, onA2, onB1), (plan.LeafCount("a1"), plan.LeafCount("a2"), plan.LeafCount("b1")));
        Assert.Equal("A", plan.Top.Node);
        AssertWellFormed(plan, inputs.FanOut);
    }

    /// <summary>With node A saturated, the receiving silo keeps its one leaf and the rest spill to node B, where the top then goes.</summary>
    [Fact]
    public void Leaves_spill_to_another_node_when_the_node_is_full()
    {
        var plan = AggregationPlanner.Plan(Needing(5,
            Silo("a1", "A", 4, expected: 100, load: 1.0), Silo("a2", "A", 2, load: 1.0), Silo("b1", "B", 8)));

        Assert.Equal((1, 0, 4), (plan.LeafCount("a1"), plan.LeafCount("a2"), plan.LeafCount("b1")));
        Assert.Equal(("b1", "B"), (plan.Top.Silo, plan.Top.Node));
        AssertWellFormed(plan, PlannerInputs.DefaultFanOut);
    }

    /// <summary>Best fit on the node: the tightest silo that still has a free core (a3 with 3, not a2 with 4), until it is full.</summary>
    [Fact]
    public void Leaves_go_to_the_tightest_silo_of_the_node()
    {
        var plan = AggregationPlanner.Plan(Needing(4, Silo("a1", "A", 2, expected: 10), Silo("a2", "A", 4), Silo("a3", "A", 3)));

        Assert.Equal((2, 0, 2), (plan.LeafCount("a1"), plan.LeafCount("a2"), plan.LeafCount("a3")));
        Assert.Equal("a2", plan.Top.Silo);
    }

    /// <summary>A spill goes to the node with the most free cores (C: 3 + 6, not B: 8), best fit there, and stays on it while it has room.</summary>
    [Fact]
    public void A_spill_goes_to_the_node_with_the_most_free_cores_and_stays()
    {
        var plan = AggregationPlanner.Plan(Needing(3,
            Silo("a1", "A", 2, expected: 10, load: 1.0), Silo("b1", "B", 8), Silo("c1", "C", 3), Silo("c2", "C", 6)));

        Assert.Equal((1, 0, 2, 0), (plan.LeafCount("a1"), plan.LeafCount("b1"), plan.LeafCount("c1"), plan.LeafCount("c2")));
        Assert.Equal(("c2", "C"), (plan.Top.Silo, plan.Top.Node));
    }

    /// <summary>Middles appear exactly when the leaves outnumber FanOut: ⌈L / 8⌉ of them on a single node, each with at most 8 leaves.</summary>
    [Theory]
    [InlineData(2, 0)]
    [InlineData(8, 0)]
    [InlineData(9, 2)]
    [InlineData(16, 2)]
    [InlineData(17, 3)]
    [InlineData(20, 3)]
    public void Middles_appear_exactly_when_leaves_exceed_the_fan_out(int leaves, int middles)
    {
        var plan = AggregationPlanner.Plan(Needing(leaves, Silo("s1", "n1", 64, expected: 100)));

        Assert.Equal(leaves, plan.OfRole(AggregatorRole.Leaf).Length);
        Assert.Equal(middles, plan.OfRole(AggregatorRole.Middle).Length);
        Assert.Equal(middles == 0 ? 2 : 3, plan.Depth);
        Assert.Equal(middles == 0 ? leaves : middles, plan.Top.Children.Length);
        AssertWellFormed(plan, PlannerInputs.DefaultFanOut);
    }

    /// <summary>Each node's leaves get middles on that node: n1's 12 leaves two middles of 6, n2's 8 leaves one; the top is on n1.</summary>
    [Fact]
    public void Middles_group_the_leaves_of_each_node_on_that_node()
    {
        var plan = AggregationPlanner.Plan(Needing(20, Silo("s1", "n1", 32, 60), Silo("s2", "n2", 32, 40)));

        var middles = plan.OfRole(AggregatorRole.Middle);
        Assert.Equal([("n1", 6), ("n1", 6), ("n2", 8)], middles.Select(m => (m.Node, m.Children.Length)));
        Assert.All(middles, middle => Assert.All(middle.Children, child => Assert.Equal(middle.Node, plan.Aggregators[child].Node)));
        Assert.Equal(("s1", 3), (plan.Top.Silo, plan.Depth));
        Assert.Equal(middles.Select(m => m.Index), plan.Top.Children);
        AssertWellFormed(plan, PlannerInputs.DefaultFanOut);
    }

    /// <summary>Middles go best fit (the tightest silo with a free core after the leaves); the top where most is free.</summary>
    [Fact]
    public void Middles_pack_tight_and_the_top_goes_where_most_is_free()
    {
        // s1: 16 cores − 12 leaves = 4 free; s2: 5 free. Both middles fit s1 (4, then 3); the top goes to s2.
        var plan = AggregationPlanner.Plan(Needing(12, Silo("s1", "n1", 16, expected: 100), Silo("s2", "n1", 5)));

        Assert.Equal(["s1", "s1"], plan.OfRole(AggregatorRole.Middle).Select(m => m.Silo));
        Assert.Equal("s2", plan.Top.Silo);
    }

    /// <summary>More middles than FanOut are grouped again: with FanOut 2, 9 leaves → 5 → 3 → 2 middles → the top, depth 5.</summary>
    [Fact]
    public void Middles_are_grouped_again_until_the_top_has_at_most_fan_out_children()
    {
        var inputs = Needing(9, Silo("s1", "n1", 64, expected: 100)) with { FanOut = 2 };

        var plan = AggregationPlanner.Plan(inputs);

        Assert.Equal((9, 10, 20, 5), (plan.OfRole(AggregatorRole.Leaf).Length, plan.OfRole(AggregatorRole.Middle).Length, plan.Count, plan.Depth));
        AssertWellFormed(plan, inputs.FanOut);
    }

    /// <summary>Same inputs give equal plans, whatever order the silos are listed in.</summary>
    [Fact]
    public void Plans_are_deterministic()
    {
        SiloCapacity[] silos =
        [
            Silo("b2", "B", 6, expected: 7), Silo("a1", "A", 4, expected: 30), Silo("c1", "C", 2, expected: 3),
            Silo("a2", "A", 4, expected: 30), Silo("b1", "B", 6), Silo("c2", "C", 16, load: 0.5),
        ];
        var inputs = Needing(24, silos);

        var plan = AggregationPlanner.Plan(inputs);

        Assert.Equal(plan, AggregationPlanner.Plan(Needing(24, silos)));
        Assert.Equal(plan, AggregationPlanner.Plan(inputs with { Silos = [.. silos.Reverse()] }));
        Assert.Equal(plan.GetHashCode(), AggregationPlanner.Plan(Needing(24, silos)).GetHashCode());
        Assert.NotEqual(plan, AggregationPlanner.Plan(inputs with { FanOut = 4 }));
        AssertWellFormed(plan, inputs.FanOut);
    }

    /// <summary>Bad inputs are refused with an ArgumentException whose parameter and message name the field.</summary>
    [Theory]
    [InlineData("Silos", "Silos must hold")]
    [InlineData("DefaultSilos", "Silos must hold")]
    [InlineData("Cores", "Silos[1].Cores must be positive, not 0")]
    [InlineData("CpuLoad", "Silos[1].CpuLoad must be between 0 and 1, not 1.5")]
    [InlineData("ExpectedUpdates", "Silos[1].ExpectedUpdates must be zero or positive")]
    [InlineData("Node", "Silos[1].Node must be")]
    [InlineData("Duplicate", "Silos[1].Silo 'a' is listed twice")]
    [InlineData("UpdateBytes", "UpdateBytes must be positive, not 0")]
    [InlineData("BytesPerSecondPerCore", "BytesPerSecondPerCore must be positive and finite, not NaN")]
    [InlineData("ArrivalWindow", "ArrivalWindow must be positive")]
    [InlineData("FanOut", "FanOut must be at least 2, not 1")]
    [InlineData("MaxLeaves", "MaxLeaves must be at least 1, not 0")]
    public void Bad_inputs_name_the_field(string bad, string message)
    {
        var good = Inputs(Silo("a", "n1", 4, 1), Silo("b", "n1", 4, 1));
        var second = good.Silos[1];
        var inputs = bad switch
        {
            "Silos" => good with { Silos = [] },
            "DefaultSilos" => good with { Silos = default },
            "Cores" => good with { Silos = [good.Silos[0], second with { Cores = 0 }] },
            "CpuLoad" => good with { Silos = [good.Silos[0], second with { CpuLoad = 1.5 }] },
            "ExpectedUpdates" => good with { Silos = [good.Silos[0], second with { ExpectedUpdates = -1 }] },
            "Node" => good with { Silos = [good.Silos[0], second with { Node = " " }] },
            "Duplicate" => good with { Silos = [good.Silos[0], second with { Silo = "a" }] },
            "UpdateBytes" => good with { UpdateBytes = 0 },
            "BytesPerSecondPerCore" => good with { BytesPerSecondPerCore = double.NaN },
            "ArrivalWindow" => good with { ArrivalWindow = TimeSpan.Zero },
            "FanOut" => good with { FanOut = 1 },
            "MaxLeaves" => good with { MaxLeaves = 0 },
            _ => throw new ArgumentOutOfRangeException(nameof(bad), bad, null),
        };

        var error = Assert.Throws<ArgumentException>(() => AggregationPlanner.Plan(inputs));

        Assert.Equal(bad is "Silos" or "DefaultSilos" or "Cores" or "CpuLoad" or "ExpectedUpdates" or "Node" or "Duplicate" ? "Silos" : bad, error.ParamName);
        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    /// <summary>Leaves that spilled from a full silo to its node's others still take that silo's updates: its sessions send to them.</summary>
    [Fact]
    public void Spilled_leaves_serve_the_silo_they_spilled_from()
    {
        var plan = AggregationPlanner.Plan(Cluster.Needing(3, Cluster.Silo("a1", "n1", 1, expected: 30), Cluster.Silo("a2", "n1", 4)));

        var serving = plan.LeavesOn("a1");
        Assert.Equal(3, serving.Length);
        Assert.Equal(1, serving.Count(l => l.Silo == "a1" && l.Serves is null));
        Assert.All(serving.Where(l => l.Silo != "a1"), l => Assert.Equal(("a2", "a1"), (l.Silo, l.Serves)));
    }
}
