namespace Orleans.LIFL.Placement;

/// <summary>Chooses the silo for a new activation. Registered per strategy type with AddPlacementDirector.</summary>
public interface IPlacementDirector
{
    Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context);
}

/// <summary>The grain that needs a home.</summary>
public readonly record struct PlacementTarget(GrainId GrainIdentity, Type GrainClass, Type? InterfaceType);

/// <summary>What a placement director may consult.</summary>
public interface IPlacementContext
{
    /// <summary>The silo making the placement decision (where the call entered the cluster).</summary>
    SiloAddress LocalSilo { get; }

    /// <summary>The active silos that can host the target's grain class. Never empty: placement fails before the
    /// director is asked when no silo can host it.</summary>
    IReadOnlyList<SiloAddress> GetCompatibleSilos(PlacementTarget target);

    /// <summary>The latest statistics a silo published, or null if none has arrived yet.</summary>
    SiloRuntimeStatistics? GetSiloStatistics(SiloAddress silo);
}

/// <summary>Load figures of one silo, as last published.</summary>
/// <param name="ProcessorCount">The cores the silo's process may use.</param>
/// <param name="NodeId">The node (machine) the silo is on: silos of one node share its shared-memory pool.</param>
/// <param name="CpuSeconds">CPU time the silo's process has used since it started.</param>
/// <param name="PeakMemoryBytes">The process's peak resident memory since it started.</param>
public sealed record SiloRuntimeStatistics(
    int ActivationCount,
    double CpuUsagePercent,
    long MemoryUsageBytes,
    long AvailableMemoryBytes,
    DateTime TimestampUtc,
    int ProcessorCount = 0,
    string NodeId = "",
    double CpuSeconds = 0,
    long PeakMemoryBytes = 0);

/// <summary>
/// The active silos with their last published figures (node, cores, CPU, memory): what grains that plan their own
/// placement consult (LIFL's aggregation planner).
/// </summary>
public interface IClusterResources
{
    SiloAddress LocalSilo { get; }

    /// <summary>The active silos, sorted, each with its latest statistics (null before any arrived).</summary>
    IReadOnlyList<(SiloAddress Silo, SiloRuntimeStatistics? Statistics)> ActiveSilos();
}

/// <summary>
/// Places a <see cref="PreferLocalPlacement"/> grain (and a stateless worker) on the silo that makes the first call, if
/// it can host the grain; otherwise on a compatible silo at random. Public so that a strategy of its own can fall back
/// to it.
/// </summary>
public sealed class PreferLocalPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var silos = context.GetCompatibleSilos(target);
        return Task.FromResult(silos.Contains(context.LocalSilo) ? context.LocalSilo : silos[Random.Shared.Next(silos.Count)]);
    }
}
