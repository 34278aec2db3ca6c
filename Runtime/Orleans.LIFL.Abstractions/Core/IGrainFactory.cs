namespace Orleans.LIFL;

/// <summary>Makes references to grains and to local observer objects.</summary>
public interface IGrainFactory
{
    /// <param name="grainClassNamePrefix">Needed only when more than one grain class implements the interface:
    /// the full name (or a unique prefix of it) of the class to use.</param>
    TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithGuidKey;

    TGrainInterface GetGrain<TGrainInterface>(long primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithIntegerKey;

    TGrainInterface GetGrain<TGrainInterface>(string primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithStringKey;

    /// <summary>A reference of the given interface to an existing identity (for example one read from storage).</summary>
    TGrainInterface GetGrain<TGrainInterface>(GrainId grainId)
        where TGrainInterface : IAddressable;

    /// <summary>
    /// Makes <paramref name="observer"/> callable by grains through the returned reference until
    /// <see cref="DeleteObjectReference{TGrainObserverInterface}"/>. Calls to it run one at a time, in order.
    /// </summary>
    TGrainObserverInterface CreateObjectReference<TGrainObserverInterface>(IGrainObserver observer)
        where TGrainObserverInterface : IGrainObserver;

    void DeleteObjectReference<TGrainObserverInterface>(IGrainObserver observer)
        where TGrainObserverInterface : IGrainObserver;
}

/// <summary>A connection to a cluster (or the embedded silo) from code that is not a grain.</summary>
public interface IClusterClient : IGrainFactory
{
    IServiceProvider ServiceProvider { get; }
}
