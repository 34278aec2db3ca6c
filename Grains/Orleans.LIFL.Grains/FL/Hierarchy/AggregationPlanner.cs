using System.Collections.Immutable;

namespace Orleans.LIFL.Grains.FL.Hierarchy;

/// <summary>
/// Sizes and places a round's aggregation hierarchy as LIFL does (Qi, Ramakrishnan, Lee; MLSys 2024): re-planned every
/// round from the arrivals the previous rounds showed (<see cref="ArrivalEstimator"/>), rather than fixed for the job.
/// A pure function of its inputs, ties broken by silo and node name (ordinal), so an unchanged cluster gets the same
/// plan again and its aggregators are reused warm instead of started cold.
/// <list type="number">
/// <item><b>Precise scaling.</b> LIFL runs as many leaf aggregators as the round's load needs and no more. The load is
/// the round's work W = N × update size to be done while the updates arrive: one aggregator on one core does
/// <see cref="PlannerInputs.BytesPerSecondPerCore"/> × window, so L = ⌈W / (throughput × window)⌉ (arrival rate ×
/// service time: Little's law). L is capped by what can use it: more leaves than updates would idle, more than free
/// cores would time-share a core and only add hand-offs.</item>
/// <item><b>Locality.</b> LIFL places an aggregator where its input lands so the update is written once into that
/// node's shared memory and only descriptors move. Here a leaf runs on each silo that expects updates, so sessions
/// hand their updates over inside the silo; this wins over the size from rule 1, since an idle leaf costs a warm
/// activation while a missing one costs every update a network hop. The round's leaves, max(L, receiving silos), are
/// shared over the receiving silos in proportion to their expected updates (largest remainder, at least one each), so
/// each leaf gets about the load L was sized for.</item>
/// <item><b>Best-fit packing, spill when full.</b> LIFL packs an aggregation subtree onto one node by best-fit bin
/// packing on CPU capacity, so partial aggregates pass through shared memory, and uses another node only once the
/// node is full. A receiving silo's extra leaves go on it while it has a free core, then best-fit on its node, then
/// on the node with the most free cores (again best-fit, and staying there while it has room). Middles group each
/// node's leaves on that node, so only one partial aggregate per middle leaves the node; the top goes where most leaves
/// are.</item>
/// </list>
/// </summary>
public static class AggregationPlanner
{
    // Sums and products of measured doubles land a hair off whole numbers (3.0000000000000004); a leaf is not added or
    // lost over that.
    private const double Tolerance = 1e-9;

    public static AggregationPlan Plan(PlannerInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        inputs.Validate();

        var silos = inputs.Silos.OrderBy(s => s.Silo, StringComparer.Ordinal).ToArray();
        var expected = EffectiveExpected(silos);
        var ledger = new CapacityLedger(silos);
        var leaves = PlaceLeaves(silos, expected, LeavesNeeded(inputs), inputs.MaxLeaves, ledger);
        if (leaves.Count == 1)
        {
            // One aggregator for the round: a top that takes the updates itself, with no hand-off at all.
            return AggregationPlan.Flat(silos[leaves[0].Placed].Silo, silos[leaves[0].Placed].Node);
        }

        var level = leaves
            .OrderBy(leaf => silos[leaf.Placed].Node, StringComparer.Ordinal)
            .ThenBy(leaf => leaf.Placed)
            .Select(leaf => new Draft(AggregatorRole.Leaf, leaf.Placed, []) { Serves = leaf.Serves })
            .ToList();
        if (level.Count > inputs.FanOut)
        {
            // A node's leaves feed middles on that node, so what crosses nodes is one partial aggregate per middle.
            level = ledger.Nodes
                .SelectMany(node => Groups(level.Where(d => silos[d.Silo].Node == node).ToList(), inputs.FanOut)
                    .Select(group => Middle(group, node, ledger)))
                .ToList();

            // More than FanOut middles (more than FanOut nodes, or FanOut² leaves on one) are grouped again. The level is in node order, so
            // consecutive groups keep a node's middles together; each new middle goes where most of its children are.
            while (level.Count > inputs.FanOut)
            {
                level = Groups(level, inputs.FanOut)
                    .Select(group => Middle(group, NodeHoldingMost(group, silos), ledger))
                    .ToList();
            }
        }

        var topNode = ledger.Nodes
            .Select(node => (
                Node: node,
                Leaves: leaves.Count(leaf => silos[leaf.Placed].Node == node),
                Expected: Enumerable.Range(0, silos.Length).Where(i => silos[i].Node == node).Sum(i => expected[i])))
            .OrderByDescending(n => n.Leaves)
            .ThenByDescending(n => n.Expected)
            .ThenBy(n => n.Node, StringComparer.Ordinal)
            .First()
            .Node;
        var top = new Draft(AggregatorRole.Top, ledger.MostFreeOn(topNode), level);
        return Number(top, silos);
    }

    /// <summary>Rule 1 alone: the leaves the round's load needs, capped by its updates, the free cores and MaxLeaves.</summary>
    internal static int LeavesNeeded(PlannerInputs inputs)
    {
        var updates = inputs.Silos.Sum(s => s.ExpectedUpdates);
        if (updates <= 0)
        {
            updates = 1;
        }

        var work = updates * inputs.UpdateBytes;
        var perLeaf = inputs.BytesPerSecondPerCore * inputs.ArrivalWindow.TotalSeconds;
        var freeCores = Math.Max(1, FloorOf(inputs.Silos.Sum(s => s.FreeCores)));
        var cap = Math.Min(Math.Min(CeilingOf(updates), freeCores), inputs.MaxLeaves);
        return Math.Clamp(CeilingOf(work / perLeaf), 1, cap);
    }

    /// <summary>
    /// The expected updates per silo; with none expected anywhere, an even share of one update each, so every silo has a
    /// leaf to send to should an update come after all.
    /// </summary>
    private static double[] EffectiveExpected(SiloCapacity[] silos)
    {
        var expected = silos.Select(s => s.ExpectedUpdates).ToArray();
        if (expected.Sum() <= 0)
        {
            Array.Fill(expected, 1.0 / silos.Length);
        }

        return expected;
    }

    /// <summary>Rules 2 and 3 for leaves: the silo index of each leaf, in placement order.</summary>
    private static List<(int Placed, int Serves)> PlaceLeaves(SiloCapacity[] silos, double[] expected, int needed, int maxLeaves, CapacityLedger ledger)
    {
        // A leaf per receiving silo, busiest first so that a MaxLeaves cap keeps the silos with the most updates.
        var receiving = Enumerable.Range(0, silos.Length)
            .Where(i => expected[i] > 0)
            .OrderByDescending(i => expected[i])
            .ThenBy(i => i)
            .Take(maxLeaves)
            .ToArray();
        var leaves = new List<(int Placed, int Serves)>(Math.Max(needed, receiving.Length));
        foreach (var silo in receiving)
        {
            ledger.Take(silo);
            leaves.Add((silo, silo));
        }

        var extras = Shares(Math.Max(needed, receiving.Length), receiving, expected).Select(share => share - 1).ToArray();

        // Every silo first fills its own free cores with its own extra leaves, before any other silo's spill can take them.
        for (var r = 0; r < receiving.Length; r++)
        {
            for (; extras[r] > 0 && ledger.HasFreeCore(receiving[r]); extras[r]--)
            {
                ledger.Take(receiving[r]);
                leaves.Add((receiving[r], receiving[r]));
            }
        }

        for (var r = 0; r < receiving.Length; r++)
        {
            var node = silos[receiving[r]].Node;
            while (extras[r] > 0)
            {
                if (ledger.BestFitOn(node) is { } target)
                {
                    ledger.Take(target);
                    leaves.Add((target, receiving[r]));
                    extras[r]--;
                }
                else if (ledger.NodeWithMostFreeCores() is { } spill)
                {
                    node = spill;
                }
                else
                {
                    // No free core anywhere (the receiving silos' own leaves took cores the total counted only in
                    // part): a leaf more would only time-share a core.
                    return leaves;
                }
            }
        }

        return leaves;
    }

    /// <summary>
    /// Shares <paramref name="total"/> leaves (at least one per silo) over <paramref name="receiving"/> in proportion to
    /// their expected updates, by largest remainder. A silo whose quota is under one gets its one and leaves the rest to
    /// be shared by the others: sharing only the leaves beyond the first in proportion would overload the busy silos
    /// (16 and 4 updates with 5 leaves: 3 + 2 leaves, 5.3 updates a leaf on the first, where L was sized for 4).
    /// </summary>
    private static int[] Shares(int total, int[] receiving, double[] expected)
    {
        var shares = new int[receiving.Length];
        var open = Enumerable.Range(0, receiving.Length).ToList();
        var left = total;
        while (true)
        {
            var sum = open.Sum(k => expected[receiving[k]]);
            var small = open.Where(k => left * expected[receiving[k]] / sum < 1).ToList();
            if (small.Count == 0)
            {
                break;
            }

            foreach (var k in small)
            {
                shares[k] = 1;
                left--;
                open.Remove(k);
            }
        }

        if (open.Count == 0)
        {
            return shares;
        }

        var openSum = open.Sum(k => expected[receiving[k]]);
        var quotas = new double[receiving.Length];
        var budget = left;
        foreach (var k in open)
        {
            quotas[k] = budget * expected[receiving[k]] / openSum;
            shares[k] = Math.Min(left, (int)Math.Floor(quotas[k]));
            left -= shares[k];
        }

        var byRemainder = open
            .OrderByDescending(k => quotas[k] - Math.Floor(quotas[k]))
            .ThenByDescending(k => expected[receiving[k]])
            .ThenBy(k => receiving[k])
            .ToArray();
        for (var j = 0; left > 0; j = (j + 1) % byRemainder.Length, left--)
        {
            shares[byRemainder[j]]++;
        }

        return shares;
    }

    /// <summary>Splits <paramref name="items"/> into the fewest consecutive groups of at most <paramref name="fanOut"/>, sizes within one of each other.</summary>
    private static IEnumerable<List<Draft>> Groups(List<Draft> items, int fanOut)
    {
        var groups = (items.Count + fanOut - 1) / fanOut;
        var start = 0;
        for (var g = 0; g < groups; g++)
        {
            var size = (items.Count / groups) + (g < items.Count % groups ? 1 : 0);
            yield return items.GetRange(start, size);
            start += size;
        }
    }

    /// <summary>A middle on <paramref name="node"/>, best fit: the tightest silo with a free core, else the least loaded.</summary>
    private static Draft Middle(List<Draft> children, string node, CapacityLedger ledger)
    {
        var silo = ledger.BestFitOn(node) ?? ledger.MostFreeOn(node);
        ledger.Take(silo);
        return new Draft(AggregatorRole.Middle, silo, children);
    }

    private static string NodeHoldingMost(List<Draft> group, SiloCapacity[] silos) =>
        group.GroupBy(d => silos[d.Silo].Node)
            .OrderByDescending(g => g.Count())
            .ThenBy(g => g.Key, StringComparer.Ordinal)
            .First()
            .Key;

    /// <summary>Indexes the tree breadth first from the top: top 0, then each level of middles, then the leaves.</summary>
    private static AggregationPlan Number(Draft top, SiloCapacity[] silos)
    {
        var order = new List<Draft> { top };
        for (var i = 0; i < order.Count; i++)
        {
            order[i].Index = i;
            foreach (var child in order[i].Children)
            {
                child.Parent = i;
                order.Add(child);
            }
        }

        var aggregators = order.Select(d => new PlannedAggregator(
            d.Role,
            d.Index,
            silos[d.Silo].Silo,
            silos[d.Silo].Node,
            d.Parent,
            d.Children.Select(c => c.Index).ToImmutableArray())
        {
            Serves = d.Serves is { } served && served != d.Silo ? silos[served].Silo : null,
        });
        return new AggregationPlan(aggregators.ToImmutableArray());
    }

    private static int CeilingOf(double value) => (int)Math.Min(int.MaxValue, Math.Ceiling(value - (Tolerance * Math.Max(1, value))));

    private static int FloorOf(double value) => (int)Math.Min(int.MaxValue, Math.Floor(value + (Tolerance * Math.Max(1, value))));

    /// <summary>An aggregator while the tree is built: its silo (an index into the sorted silos) and children.</summary>
    private sealed class Draft(AggregatorRole role, int silo, List<Draft> children)
    {
        public AggregatorRole Role { get; } = role;

        public int Silo { get; } = silo;

        public List<Draft> Children { get; } = children;

        public int Index { get; set; }

        public int Parent { get; set; } = PlannedAggregator.NoParent;

        /// <summary>For a leaf: the silo index whose updates it takes (its own unless it spilled).</summary>
        public int? Serves { get; init; }
    }
}
