namespace Orleans.LIFL.Placement;

/// <summary>
/// How the silo for a new activation is chosen. A strategy is a plain value; the <see cref="IPlacementDirector"/>
/// registered for its type makes the choice.
/// </summary>
public abstract class PlacementStrategy
{
    /// <summary>
    /// Whether activations are registered in, and calls routed through, the grain directory (true unless overridden).
    /// A strategy that returns false promises that its director names the same silo for a grain on every silo and at
    /// every call, from the grain id alone (a silo named in the key, say): the runtime then asks the director where each
    /// call goes instead of looking the grain up, and the silo's catalog alone keeps it to one activation. Such grains
    /// cost no directory round trip to call or to activate, which matters when a directory is a database and many
    /// grains are first called at once (after a failure, say).
    /// </summary>
    public virtual bool IsUsingGrainDirectory => true;

    /// <summary>
    /// Whether <paramref name="grainId"/> is registered in, and called through, the grain directory:
    /// <see cref="IsUsingGrainDirectory"/>, unless the strategy places only some of its grains from their id alone
    /// (those whose key names a silo, say), with the same promise for those.
    /// </summary>
    public virtual bool UsesGrainDirectory(GrainId grainId) => IsUsingGrainDirectory;

    public override string ToString() => GetType().Name;
}

/// <summary>Any compatible silo, uniformly at random (the default).</summary>
public sealed class RandomPlacement : PlacementStrategy
{
    public static RandomPlacement Singleton { get; } = new();
}

/// <summary>The silo that makes the first call, if it can host the grain; otherwise random.</summary>
public sealed class PreferLocalPlacement : PlacementStrategy
{
    public static PreferLocalPlacement Singleton { get; } = new();
}

/// <summary>A silo chosen by a stable hash of the grain id over the sorted compatible silos.</summary>
public sealed class HashBasedPlacement : PlacementStrategy
{
    public static HashBasedPlacement Singleton { get; } = new();
}

/// <summary>Power of two choices: of two random compatible silos, the one with fewer activations.</summary>
public sealed class ActivationCountBasedPlacement : PlacementStrategy
{
    public static ActivationCountBasedPlacement Singleton { get; } = new();
}

/// <summary>Always the silo that receives the call; set by [StatelessWorker].</summary>
public sealed class StatelessWorkerPlacement : PlacementStrategy
{
    public StatelessWorkerPlacement(int maxLocalWorkers)
    {
        MaxLocalWorkers = maxLocalWorkers;
    }

    public int MaxLocalWorkers { get; }
}

/// <summary>
/// Names the director of a custom <see cref="PlacementStrategy"/>, so that a grain library can bring its own placement
/// without the silo registering it: the silo creates the director (from its services) when none was registered with
/// AddPlacementDirector.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = false)]
public sealed class PlacementDirectorAttribute : Attribute
{
    public PlacementDirectorAttribute(Type directorType)
    {
        ArgumentNullException.ThrowIfNull(directorType);
        if (!typeof(IPlacementDirector).IsAssignableFrom(directorType))
        {
            throw new ArgumentException($"{directorType.Name} does not implement {nameof(IPlacementDirector)}.", nameof(directorType));
        }

        DirectorType = directorType;
    }

    public Type DirectorType { get; }
}

/// <summary>Chooses the placement strategy of a grain class. Derive from it for a custom strategy.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true, AllowMultiple = false)]
public abstract class PlacementAttribute : Attribute
{
    protected PlacementAttribute(PlacementStrategy placementStrategy)
    {
        ArgumentNullException.ThrowIfNull(placementStrategy);
        PlacementStrategy = placementStrategy;
    }

    public PlacementStrategy PlacementStrategy { get; }
}

public sealed class RandomPlacementAttribute() : PlacementAttribute(RandomPlacement.Singleton);

public sealed class PreferLocalPlacementAttribute() : PlacementAttribute(PreferLocalPlacement.Singleton);

public sealed class HashBasedPlacementAttribute() : PlacementAttribute(HashBasedPlacement.Singleton);

public sealed class ActivationCountBasedPlacementAttribute() : PlacementAttribute(ActivationCountBasedPlacement.Singleton);

/// <summary>
/// The silo with the most spare resources: lowest weighted score of CPU use, memory use and activation count, as
/// the silos last reported them (in the answers to failure-detection probes).
/// </summary>
public sealed class ResourceOptimizedPlacement : PlacementStrategy
{
    public static ResourceOptimizedPlacement Singleton { get; } = new();
}

public sealed class ResourceOptimizedPlacementAttribute() : PlacementAttribute(ResourceOptimizedPlacement.Singleton);
