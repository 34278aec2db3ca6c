using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.Catalog;

namespace Orleans.LIFL.Runtime.Observers;

/// <summary>
/// The objects a runtime (silo or client) makes callable through <see cref="IGrainFactory.CreateObjectReference{T}"/>.
/// Each is served by a pinned activation, so its calls run one at a time, in order. Its grain id names the host
/// ("silo:address" or "client:id"), so any silo can route to it.
/// </summary>
internal sealed class ObserverRegistry
{
    public static readonly GrainType ObserverGrainType = new("sys.observer");

    private volatile string _hostKey;
    private readonly ConcurrentDictionary<GrainId, ActivationData> _byId = new();
    private readonly ConditionalWeakTable<object, StrongBox<GrainId>> _byObject = new();
    private ActivationEnvironment? _environment;

    public ObserverRegistry(string hostKey)
    {
        _hostKey = hostKey;
    }

    public ActivationEnvironment Environment
    {
        set => _environment = value;
    }

    /// <summary>Where calls to observers created from now on are routed ("silo:...", "client:id" or "client:id@gateway").</summary>
    public string HostKey
    {
        get => _hostKey;
        set => _hostKey = value;
    }

    public static bool IsObserver(GrainId grainId) => grainId.Type == ObserverGrainType;

    /// <summary>The host part of an observer's id: "silo:..." or "client:...".</summary>
    public static string HostOf(GrainId grainId)
    {
        var slash = grainId.Key.LastIndexOf('/');
        return slash < 0 ? grainId.Key : grainId.Key[..slash];
    }

    public GrainId Register(IGrainObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        var environment = _environment ?? throw new InvalidOperationException("The runtime is not started; it cannot host observers yet.");
        if (_byObject.TryGetValue(observer, out var known))
        {
            return known.Value;
        }

        var id = new GrainId(ObserverGrainType, $"{_hostKey}/{Guid.NewGuid():N}");
        _byId[id] = new ActivationData(id, null, environment, observer);
        _byObject.AddOrUpdate(observer, new StrongBox<GrainId>(id));
        return id;
    }

    public void Delete(IGrainObserver observer)
    {
        if (_byObject.TryGetValue(observer, out var id))
        {
            _byObject.Remove(observer);
            if (_byId.TryRemove(id.Value, out var activation))
            {
                activation.Kill(new ObserverNotFoundException($"Observer {id.Value} was deleted."));
            }
        }
    }

    public bool TryDeliver(RequestBase request)
    {
        if (_byId.TryGetValue(request.TargetId, out var activation) && activation.Enqueue(request) == EnqueueResult.Accepted)
        {
            return true;
        }

        request.Fail(new ObserverNotFoundException($"Observer {request.TargetId} does not exist: it was deleted, or its host restarted."));
        return true;
    }

    /// <summary>Fails the calls still queued for every observer (the host is going away).</summary>
    public void KillAll(Exception error)
    {
        foreach (var activation in _byId.Values)
        {
            activation.Kill(error);
        }

        _byId.Clear();
    }

    public IEnumerable<ActivationData> Activations => _byId.Values;
}
