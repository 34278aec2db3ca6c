using Orleans.LIFL.Placement;

namespace Orleans.LIFL.Grains.FL;

/// <summary>
/// LIFL's locality-aware placement: the grain's key names the silo it should run on ("node/silo/…"), chosen by the
/// aggregation planner (a leaf where its updates land, a subtree packed onto one node). The director honours it while
/// that silo is active; otherwise it keeps to the same node (the least loaded silo there), so that hand-offs stay in
/// the node's shared memory, and only then goes elsewhere (the least loaded silo).
/// </summary>
[PlacementDirector(typeof(LocalityAwarePlacementDirector))]
public sealed class LocalityAwarePlacement : PlacementStrategy
{
    public static LocalityAwarePlacement Singleton { get; } = new();

    /// <summary>The key of a grain meant for <paramref name="silo"/> of <paramref name="node"/>.</summary>
    public static string Key(string node, string silo, string rest) => $"{node}/{silo}/{rest}";

    /// <summary>The node and silo a key names; false for a key of another form.</summary>
    public static bool TryParse(string key, out string node, out SiloAddress? silo) => TryParse(key, out node, out silo, out _);

    /// <summary>The node and silo a key names, and the rest of the key after them; false for a key of another form.</summary>
    public static bool TryParse(string key, out string node, out SiloAddress? silo, out string rest)
    {
        node = "";
        silo = null;
        rest = key;
        var first = key.IndexOf('/', StringComparison.Ordinal);
        var second = first < 0 ? -1 : key.IndexOf('/', first + 1);
        if (second < 0)
        {
            return false;
        }

        try
        {
            silo = SiloAddress.Parse(key[(first + 1)..second]);
            (node, rest) = (key[..first], key[(second + 1)..]);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}

[AttributeUsage(AttributeTargets.Class, Inherited = true, AllowMultiple = false)]
public sealed class LocalityAwarePlacementAttribute() : PlacementAttribute(LocalityAwarePlacement.Singleton);

/// <summary>Places <see cref="LocalityAwarePlacement"/> grains: the named silo, else its node, else the least loaded silo.</summary>
public sealed class LocalityAwarePlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var compatible = context.GetCompatibleSilos(target);
        if (!LocalityAwarePlacement.TryParse(target.GrainIdentity.Key, out var node, out var silo))
        {
            return Task.FromResult(LeastLoaded(compatible, context));
        }

        if (compatible.Contains(silo!))
        {
            return Task.FromResult(silo!);
        }

        var sameNode = compatible.Where(s => context.GetSiloStatistics(s)?.NodeId == node).ToList();
        return Task.FromResult(LeastLoaded(sameNode.Count > 0 ? sameNode : compatible, context));
    }

    private static SiloAddress LeastLoaded(IReadOnlyList<SiloAddress> silos, IPlacementContext context) =>
        silos.OrderBy(s => context.GetSiloStatistics(s)?.CpuUsagePercent ?? 0).ThenBy(s => s.ToString(), StringComparer.Ordinal).First();
}
