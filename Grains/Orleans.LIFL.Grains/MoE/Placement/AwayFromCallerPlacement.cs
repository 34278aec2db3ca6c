using Orleans.LIFL.Placement;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// Anti-affinity with the caller: the grain goes to another silo than the one making the first call (a session's
/// checkpoint store is not placed where the session runs, so that one death cannot take both). Among the other silos
/// the key's stable hash spreads grains evenly; on a one-silo cluster there is no other choice.
/// </summary>
[PlacementDirector(typeof(AwayFromCallerPlacementDirector))]
public sealed class AwayFromCallerPlacement : PlacementStrategy
{
    public static AwayFromCallerPlacement Singleton { get; } = new();
}

[AttributeUsage(AttributeTargets.Class, Inherited = true, AllowMultiple = false)]
public sealed class AwayFromCallerPlacementAttribute() : PlacementAttribute(AwayFromCallerPlacement.Singleton);

public sealed class AwayFromCallerPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var compatible = context.GetCompatibleSilos(target);
        var others = compatible.Where(s => !s.Equals(context.LocalSilo)).Order().ToList();
        if (others.Count == 0)
        {
            return Task.FromResult(compatible[0]);
        }

        return Task.FromResult(others[(int)(target.GrainIdentity.GetStableHashCode() % (uint)others.Count)]);
    }
}
