using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Placement;

namespace Orleans.LIFL.Grains;

/// <summary>
/// A grain whose key names a silo (<see cref="LocalityAwarePlacement.Key"/>'s form) runs on that silo and nowhere else,
/// found without the grain directory (as with <see cref="SiloPinnedPlacement"/>); a grain with any other key runs on
/// the silo of its first call and is registered in the directory (as with <see cref="PreferLocalPlacement"/>). For an
/// MoE session: a request's first incarnation lands on its client's gateway, and an incarnation resuming it after a
/// failure on the silo its caller names (the silo of the checkpoint it restores from), with no directory round trip in
/// the failure's stall.
/// </summary>
[PlacementDirector(typeof(NamedSiloOrLocalPlacementDirector))]
public sealed class NamedSiloOrLocalPlacement : PlacementStrategy
{
    public static NamedSiloOrLocalPlacement Singleton { get; } = new();

    public override bool UsesGrainDirectory(GrainId grainId) => !LocalityAwarePlacement.TryParse(grainId.Key, out _, out _);
}

[AttributeUsage(AttributeTargets.Class, Inherited = true, AllowMultiple = false)]
public sealed class NamedSiloOrLocalPlacementAttribute() : PlacementAttribute(NamedSiloOrLocalPlacement.Singleton);

/// <summary>Places <see cref="NamedSiloOrLocalPlacement"/> grains on the silo their key names (or refuses), else on the calling silo.</summary>
public sealed class NamedSiloOrLocalPlacementDirector : IPlacementDirector
{
    private readonly SiloPinnedPlacementDirector _named = new();
    private readonly PreferLocalPlacementDirector _local = new();

    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context) =>
        LocalityAwarePlacement.TryParse(target.GrainIdentity.Key, out _, out _)
            ? _named.OnAddActivation(strategy, target, context)
            : _local.OnAddActivation(strategy, target, context);
}
