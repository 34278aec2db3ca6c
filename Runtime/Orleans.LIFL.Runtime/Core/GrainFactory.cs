using Orleans.LIFL.Invocation;
using Orleans.LIFL.Metadata;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Observers;

namespace Orleans.LIFL.Runtime.Core;

/// <summary>Makes typed references from generated proxies; shared by silos and clients.</summary>
internal sealed class GrainFactory : IGrainFactory
{
    private readonly ObserverRegistry _observers;
    private IGrainTypeResolver? _resolver;
    private IGrainCallRuntime? _runtime;

    public GrainFactory(IGrainTypeResolver? resolver, ObserverRegistry observers)
    {
        _resolver = resolver;
        _observers = observers;
    }

    /// <summary>Maps grain interfaces to grain types; a client sets it once its gateway sent the manifest.</summary>
    public IGrainTypeResolver Resolver
    {
        get => _resolver ?? throw new InvalidOperationException("The client is not connected yet: call ConnectAsync (UseLiflClient's host does it at start).");
        set => _resolver = value;
    }

    public IGrainCallRuntime Runtime
    {
        get => _runtime ?? throw new InvalidOperationException("The runtime is not started yet.");
        set => _runtime = value;
    }

    public TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithGuidKey =>
        Create<TGrainInterface>(GrainId.Create(Resolver.ResolveGrainType(typeof(TGrainInterface), grainClassNamePrefix), primaryKey));

    public TGrainInterface GetGrain<TGrainInterface>(long primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithIntegerKey =>
        Create<TGrainInterface>(GrainId.Create(Resolver.ResolveGrainType(typeof(TGrainInterface), grainClassNamePrefix), primaryKey));

    public TGrainInterface GetGrain<TGrainInterface>(string primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithStringKey
    {
        ArgumentNullException.ThrowIfNull(primaryKey);
        return Create<TGrainInterface>(GrainId.Create(Resolver.ResolveGrainType(typeof(TGrainInterface), grainClassNamePrefix), primaryKey));
    }

    public TGrainInterface GetGrain<TGrainInterface>(GrainId grainId)
        where TGrainInterface : IAddressable
    {
        if (grainId.IsDefault)
        {
            throw new ArgumentException("The grain id is empty.", nameof(grainId));
        }

        return Create<TGrainInterface>(grainId);
    }

    public TGrainObserverInterface CreateObjectReference<TGrainObserverInterface>(IGrainObserver observer)
        where TGrainObserverInterface : IGrainObserver
    {
        if (observer is not TGrainObserverInterface)
        {
            throw new ArgumentException($"{observer.GetType().Name} does not implement {typeof(TGrainObserverInterface).Name}.", nameof(observer));
        }

        return Create<TGrainObserverInterface>(_observers.Register(observer));
    }

    public void DeleteObjectReference<TGrainObserverInterface>(IGrainObserver observer)
        where TGrainObserverInterface : IGrainObserver => _observers.Delete(observer);

    private TGrainInterface Create<TGrainInterface>(GrainId grainId) =>
        (TGrainInterface)(object)ProxyFactory<TGrainInterface>.Create(grainId, Runtime);

    /// <summary>The generated proxy constructor of one interface, looked up once.</summary>
    private static class ProxyFactory<TInterface>
    {
        private static readonly Func<GrainId, IGrainCallRuntime, GrainReference>? Factory = GeneratedCodeRegistry.FindProxy(typeof(TInterface));

        public static GrainReference Create(GrainId grainId, IGrainCallRuntime runtime) =>
            Factory is not null
                ? Factory(grainId, runtime)
                : throw new GrainTypeResolutionException(
                    $"No generated proxy for {typeof(TInterface).FullName}: is it a grain interface, and does its project enable the code generator (<LiflCodeGen>true</LiflCodeGen>)?");
    }
}

/// <summary>The call runtime of a silo: what grain references use while its grains (or host code) run.</summary>
internal sealed class SiloCallRuntime(Messaging.MessageRouter router, GrainFactory factory) : IGrainCallRuntime
{
    public IGrainFactory GrainFactory => factory;

    public void Send(GrainReference target, RequestBase request) => router.Send(request);
}
