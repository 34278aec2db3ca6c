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

/// <summary>
/// A strategy without the grain directory: the key "{index}/..." names the silo (index into the silos in address
/// order), so every silo's director gives the same answer for every call.
/// </summary>
[PlacementDirector(typeof(KeyNamedSiloPlacementDirector))]
public sealed class KeyNamedSiloPlacement : PlacementStrategy
{
    public static KeyNamedSiloPlacement Singleton { get; } = new();

    public override bool IsUsingGrainDirectory => false;
}

public sealed class KeyNamedSiloPlacementAttribute() : PlacementAttribute(KeyNamedSiloPlacement.Singleton);

public sealed class KeyNamedSiloPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var index = int.Parse(target.GrainIdentity.Key.Split('/')[0], System.Globalization.CultureInfo.InvariantCulture);
        var silos = context.GetCompatibleSilos(target).Order().ToArray();
        return index < silos.Length
            ? Task.FromResult(silos[index])
            : throw new SiloUnavailableException($"{target.GrainIdentity} names silo {index}; there are {silos.Length}.");
    }
}

public interface IKeyNamedGrain : IPlacedGrain
{
    /// <summary>1, 2, 3, ... for the calls this activation took.</summary>
    Task<int> Next();
}

[KeyNamedSiloPlacement]
public sealed class KeyNamedGrain : PlacedGrainBase, IKeyNamedGrain
{
    private int _calls;

    public Task<int> Next() => Task.FromResult(++_calls);
}
