using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Placement;

namespace Orleans.LIFL.Grains;

/// <summary>
/// The grain runs on the silo its key names (keys of <see cref="LocalityAwarePlacement.Key"/>'s form) and nowhere else.
/// For grains whose silo is the point: a per-silo monitor must not report another silo's figures, and an expert
/// replica must not move into the failure domain of its own shadow. When the named silo is not active the call fails
/// with <see cref="SiloUnavailableException"/> at once, so the caller fails over (a session to the shadow) and the
/// grain's owner places a replacement (the MoE deployment re-plans, keeping replicas of one expert on distinct silos).
/// </summary>
[PlacementDirector(typeof(SiloPinnedPlacementDirector))]
public sealed class SiloPinnedPlacement : PlacementStrategy
{
    public static SiloPinnedPlacement Singleton { get; } = new();

    /// <summary>The key names the silo: calls go there without a directory lookup, and activations are not registered.</summary>
    public override bool IsUsingGrainDirectory => false;
}

[AttributeUsage(AttributeTargets.Class, Inherited = true, AllowMultiple = false)]
public sealed class SiloPinnedPlacementAttribute() : PlacementAttribute(SiloPinnedPlacement.Singleton);

/// <summary>Places <see cref="SiloPinnedPlacement"/> grains on the silo of their key, or refuses.</summary>
public sealed class SiloPinnedPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var key = target.GrainIdentity.Key;
        if (!LocalityAwarePlacement.TryParse(key, out _, out var silo))
        {
            throw new ArgumentException(
                $"{target.GrainIdentity} is pinned to a silo, but its key '{key}' does not name one (node/silo/...).", nameof(target));
        }

        if (!context.GetCompatibleSilos(target).Contains(silo!))
        {
            throw new SiloUnavailableException($"{target.GrainIdentity} is pinned to silo {silo}, which is not active: it is not placed elsewhere.");
        }

        return Task.FromResult(silo!);
    }
}
