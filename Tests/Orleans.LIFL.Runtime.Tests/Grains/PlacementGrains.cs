using Orleans.LIFL.Placement;

namespace Orleans.LIFL.Runtime.Tests.Grains;

public interface IPlacedGrain : IGrainWithStringKey
{
    Task<string> Silo();
}

public abstract class PlacedGrainBase : Grain, IPlacedGrain
{
    public Task<string> Silo() => Task.FromResult(GrainContext.Silo.ToString());
}

public interface IRandomPlacedGrain : IPlacedGrain;

[RandomPlacement]
public sealed class RandomPlacedGrain : PlacedGrainBase, IRandomPlacedGrain;

public interface ILocalPlacedGrain : IPlacedGrain;

[PreferLocalPlacement]
public sealed class LocalPlacedGrain : PlacedGrainBase, ILocalPlacedGrain;

public interface IHashPlacedGrain : IPlacedGrain;

[HashBasedPlacement]
public sealed class HashPlacedGrain : PlacedGrainBase, IHashPlacedGrain;

public interface ICountPlacedGrain : IPlacedGrain;

[ActivationCountBasedPlacement]
public sealed class CountPlacedGrain : PlacedGrainBase, ICountPlacedGrain;

/// <summary>A custom strategy: always the last silo in address order.</summary>
public sealed class LastSiloPlacement : PlacementStrategy
{
    public static LastSiloPlacement Singleton { get; } = new();
}

public sealed class LastSiloPlacementAttribute() : PlacementAttribute(LastSiloPlacement.Singleton);

public sealed class LastSiloPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context) =>
        Task.FromResult(context.GetCompatibleSilos(target).OrderBy(s => s).Last());
}

public interface ICustomPlacedGrain : IPlacedGrain;

[LastSiloPlacement]
public sealed class CustomPlacedGrain : PlacedGrainBase, ICustomPlacedGrain;

public interface IResourcePlacedGrain : IPlacedGrain;

[ResourceOptimizedPlacement]
public sealed class ResourcePlacedGrain : PlacedGrainBase, IResourcePlacedGrain;

/// <summary>A strategy that brings its own director: no AddPlacementDirector needed.</summary>
[PlacementDirector(typeof(FirstSiloPlacementDirector))]
public sealed class FirstSiloPlacement : PlacementStrategy
{
    public static FirstSiloPlacement Singleton { get; } = new();
}

public sealed class FirstSiloPlacementAttribute() : PlacementAttribute(FirstSiloPlacement.Singleton);

public sealed class FirstSiloPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context) =>
        Task.FromResult(context.GetCompatibleSilos(target).OrderBy(s => s).First());
}

public interface ISelfDirectedGrain : IPlacedGrain;

[FirstSiloPlacement]
public sealed class SelfDirectedGrain : PlacedGrainBase, ISelfDirectedGrain;
