using Orleans.LIFL.Invocation;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Runtime.Messaging;
using Orleans.LIFL.Runtime.Storage;
using Orleans.LIFL.Runtime.Timers;
using Orleans.LIFL.Timers;

namespace Orleans.LIFL.Runtime.Catalog;

internal enum ActivationState
{
    /// <summary>Created, its activation turn not yet run; requests wait.</summary>
    Activating,

    /// <summary>Serving requests.</summary>
    Valid,

    /// <summary>Finishing its running requests and OnDeactivateAsync; new requests wait and are re-routed after.</summary>
    Deactivating,

    /// <summary>Gone: removed from the catalog. Requests that still reach it are re-routed.</summary>
    Invalid,
}

/// <summary>
/// One activation: the grain object, its turn scheduler (one turn at a time, requests admitted by the grain's
/// reentrancy rules), its timers, state and extensions, and its life cycle.
/// </summary>
internal sealed partial class ActivationData : IGrainContext, ITurnScheduler
{
    private readonly ActivationEnvironment _environment;
    private readonly LifecycleContext _lifecycle;
    private readonly List<GrainTimerBase> _timers = [];
    private readonly List<IPersistentStateLoader> _states = [];
    private Dictionary<Type, object>? _extensions;
    private object? _instance;

    public ActivationData(GrainId grainId, GrainClassInfo? classInfo, ActivationEnvironment environment, object? pinnedInstance = null)
    {
        GrainId = grainId;
        ClassInfo = classInfo;
        _environment = environment;
        Address = new GrainAddress(grainId, environment.Silo, ActivationId.NewId());
        _lifecycle = new LifecycleContext { Scheduler = this };
        _lastActivity = environment.Time.GetTimestamp();
        if (pinnedInstance is not null)
        {
            // An observer: an existing object served with turn semantics, never collected, not in the directory.
            _instance = pinnedInstance;
            _state = ActivationState.Valid;
            IsPinned = true;
        }
    }

    public GrainId GrainId { get; }

    public GrainAddress Address { get; }

    internal Microsoft.Extensions.Logging.ILogger Logger => _environment.Logger;

    /// <summary>The grain class; null for observer activations.</summary>
    public GrainClassInfo? ClassInfo { get; }

    public bool IsPinned { get; }

    /// <summary>Set for activations that belong to a stateless worker group.</summary>
    public StatelessWorkerGroup? WorkerGroup { get; init; }

    public object? GrainInstance => _instance;

    public SiloAddress Silo => _environment.Silo;

    public IServiceProvider ActivationServices => _environment.Services;

    public IGrainFactory GrainFactory => _environment.GrainFactory;

    IGrainCallRuntime ITurnScheduler.Runtime => _environment.Runtime;

    public ActivationState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    public void DeactivateOnIdle() => StartDeactivation(new DeactivationReason(DeactivationReasonCode.ApplicationRequested, "DeactivateOnIdle was called"));

    public void DelayDeactivation(TimeSpan timeSpan)
    {
        var until = timeSpan == Timeout.InfiniteTimeSpan || timeSpan >= TimeSpan.FromDays(3650)
            ? long.MaxValue
            : _environment.Time.GetTimestamp() + CallTimeouts.ToTicks(_environment.Time, timeSpan);
        lock (_lock)
        {
            _keepAliveUntil = until;
        }
    }

    public IGrainTimer RegisterGrainTimer<TState>(Func<TState, CancellationToken, Task> callback, TState state, GrainTimerCreationOptions options)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new GrainTimer<TState>(this, _environment.Time, callback, state, options);
        lock (_lock)
        {
            if (_state is ActivationState.Invalid)
            {
                throw new InvalidOperationException($"Activation {GrainId} is no longer active; it cannot register timers.");
            }

            _timers.Add(timer);
        }

        timer.Start();
        return timer;
    }

    internal void RemoveTimer(GrainTimerBase timer)
    {
        lock (_lock)
        {
            _timers.Remove(timer);
        }
    }

    public TExtension GetExtension<TExtension>()
        where TExtension : class, IGrainExtension
    {
        lock (_lock)
        {
            _extensions ??= [];
            if (_extensions.TryGetValue(typeof(TExtension), out var existing))
            {
                return (TExtension)existing;
            }

            // An observer object may implement the extension itself (a client-side stream consumer does).
            var created = _instance is TExtension own && IsPinned ? own : (TExtension)_environment.Extensions.Create(typeof(TExtension), this);
            _extensions[typeof(TExtension)] = created;
            return created;
        }
    }

    public IPersistentState<TState> GetPersistentState<TState>(string stateName, string? storageName)
    {
        var storage = _environment.Storage
            ?? throw new InvalidOperationException("Persistent state is only available to grains hosted by a silo.");
        var state = storage.CreateState<TState>(GrainId, stateName, storageName);
        lock (_lock)
        {
            _states.Add(state);
        }

        return state;
    }

    public override string ToString() => Address.ToString();

    /// <summary>The turn context of the activation's own work: activation, deactivation.</summary>
    private sealed class LifecycleContext : TurnContext;
}
