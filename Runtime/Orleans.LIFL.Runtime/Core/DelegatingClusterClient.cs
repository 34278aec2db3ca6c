namespace Orleans.LIFL.Runtime.Core;

/// <summary>An <see cref="IClusterClient"/> whose references come from a grain factory (embedded or external client).</summary>
internal abstract class DelegatingClusterClient : IClusterClient
{
    protected abstract IGrainFactory Factory { get; }

    public abstract IServiceProvider ServiceProvider { get; }

    public TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithGuidKey => Factory.GetGrain<TGrainInterface>(primaryKey, grainClassNamePrefix);

    public TGrainInterface GetGrain<TGrainInterface>(long primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithIntegerKey => Factory.GetGrain<TGrainInterface>(primaryKey, grainClassNamePrefix);

    public TGrainInterface GetGrain<TGrainInterface>(string primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithStringKey => Factory.GetGrain<TGrainInterface>(primaryKey, grainClassNamePrefix);

    public TGrainInterface GetGrain<TGrainInterface>(GrainId grainId)
        where TGrainInterface : IAddressable => Factory.GetGrain<TGrainInterface>(grainId);

    public TGrainObserverInterface CreateObjectReference<TGrainObserverInterface>(IGrainObserver observer)
        where TGrainObserverInterface : IGrainObserver => Factory.CreateObjectReference<TGrainObserverInterface>(observer);

    public void DeleteObjectReference<TGrainObserverInterface>(IGrainObserver observer)
        where TGrainObserverInterface : IGrainObserver => Factory.DeleteObjectReference<TGrainObserverInterface>(observer);
}
