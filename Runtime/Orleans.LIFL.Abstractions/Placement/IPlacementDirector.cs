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
public sealed record SiloRuntimeStatistics(
    int ActivationCount,
    double CpuUsagePercent,
    long MemoryUsageBytes,
    long AvailableMemoryBytes,
    DateTime TimestampUtc);
