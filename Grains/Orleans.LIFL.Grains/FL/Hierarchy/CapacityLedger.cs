namespace Orleans.LIFL.Grains.FL.Hierarchy;

/// <summary>
/// The planner's running account of free cores per silo while it places a round's aggregators: each aggregator takes
/// one core. Silos are indexed in the order given (the planner sorts them by name, so lower index wins a tie).
/// </summary>
internal sealed class CapacityLedger
{
    // Free cores are fractional (Cores·(1 − CpuLoad)); this keeps 0.9999999999999998 from counting as less than a core.
    private const double Tolerance = 1e-9;

    private readonly IReadOnlyList<SiloCapacity> _silos;
    private readonly double[] _free;

    public CapacityLedger(IReadOnlyList<SiloCapacity> silos)
    {
        _silos = silos;
        _free = silos.Select(s => s.FreeCores).ToArray();
        Nodes = silos.Select(s => s.Node).Distinct().Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The nodes, by name.</summary>
    public IReadOnlyList<string> Nodes { get; }

    public double Free(int silo) => _free[silo];

    public bool HasFreeCore(int silo) => _free[silo] >= 1 - Tolerance;

    /// <summary>Books one aggregator on the silo; it may go below zero for the one aggregator every silo can host.</summary>
    public void Take(int silo) => _free[silo] -= 1;

    /// <summary>Best fit: the silo of <paramref name="node"/> with the least free capacity that still has a free core.</summary>
    public int? BestFitOn(string node)
    {
        int? best = null;
        for (var i = 0; i < _silos.Count; i++)
        {
            if (_silos[i].Node == node && HasFreeCore(i) && (best is null || _free[i] < _free[best.Value] - Tolerance))
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>The silo of <paramref name="node"/> with the most free capacity, free core or not.</summary>
    public int MostFreeOn(string node)
    {
        var best = -1;
        for (var i = 0; i < _silos.Count; i++)
        {
            if (_silos[i].Node == node && (best < 0 || _free[i] > _free[best] + Tolerance))
            {
                best = i;
            }
        }

        return best >= 0 ? best : throw new ArgumentException($"No silo is on node '{node}'.", nameof(node));
    }

    /// <summary>Where to spill to: the node with the most free cores among those with a silo that has a free core.</summary>
    public string? NodeWithMostFreeCores()
    {
        string? best = null;
        var bestFree = 0.0;
        foreach (var node in Nodes)
        {
            if (BestFitOn(node) is null)
            {
                continue;
            }

            var free = Enumerable.Range(0, _silos.Count).Where(i => _silos[i].Node == node).Sum(i => Math.Max(0, _free[i]));
            if (best is null || free > bestFree + Tolerance)
            {
                (best, bestFree) = (node, free);
            }
        }

        return best;
    }
}
