using Orleans.LIFL.Placement;

namespace Orleans.LIFL.Runtime.Placement;

/// <summary>Weights of the resource-aware director (they need not sum to 1).</summary>
public sealed class ResourceOptimizedPlacementOptions
{
    public double CpuWeight { get; set; } = 0.4;

    public double MemoryWeight { get; set; } = 0.4;

    public double ActivationCountWeight { get; set; } = 0.2;

    /// <summary>Scores within this of the best count as ties; ties prefer the local silo, then a random one.</summary>
    public double TieTolerance { get; set; } = 0.02;
}

/// <summary>
/// Places on the silo with the lowest load score: CPU use (0-1), memory use (share of what the silo could use) and
/// activation count (relative to the busiest silo). A silo that has not reported yet is scored as average so it
/// is neither flooded nor starved.
/// </summary>
internal sealed class ResourceOptimizedPlacementDirector(ResourceOptimizedPlacementOptions options) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target);
        if (silos.Count == 1)
        {
            return Task.FromResult(silos[0]);
        }

        var statistics = silos.Select(context.GetSiloStatistics).ToArray();
        var maxActivations = Math.Max(1, statistics.Max(s => s?.ActivationCount ?? 0));
        var scores = statistics.Select(s => s is null ? double.NaN : Score(s, maxActivations)).ToArray();
        var known = scores.Where(s => !double.IsNaN(s)).ToArray();
        var average = known.Length > 0 ? known.Average() : 0;
        for (var i = 0; i < scores.Length; i++)
        {
            if (double.IsNaN(scores[i]))
            {
                scores[i] = average;
            }
        }

        var best = scores.Min();
        var ties = silos.Where((_, i) => scores[i] <= best + options.TieTolerance).ToList();
        return Task.FromResult(ties.Contains(context.LocalSilo) ? context.LocalSilo : ties[Random.Shared.Next(ties.Count)]);
    }

    private double Score(SiloRuntimeStatistics statistics, int maxActivations)
    {
        var cpu = Math.Clamp(statistics.CpuUsagePercent / 100, 0, 1);
        var capacity = statistics.MemoryUsageBytes + statistics.AvailableMemoryBytes;
        var memory = capacity > 0 ? Math.Clamp((double)statistics.MemoryUsageBytes / capacity, 0, 1) : 0;
        var activations = (double)statistics.ActivationCount / maxActivations;
        return (options.CpuWeight * cpu) + (options.MemoryWeight * memory) + (options.ActivationCountWeight * activations);
    }
}
