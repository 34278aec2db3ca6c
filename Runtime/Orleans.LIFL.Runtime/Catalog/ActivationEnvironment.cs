using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Runtime.Messaging;
using Orleans.LIFL.Runtime.Storage;

namespace Orleans.LIFL.Runtime.Catalog;

/// <summary>What every activation of one runtime (a silo, or a client hosting observers) shares.</summary>
internal sealed class ActivationEnvironment
{
    public required SiloAddress Silo { get; init; }

    public required IGrainCallRuntime Runtime { get; init; }

    public required IGrainFactory GrainFactory { get; init; }

    public required IServiceProvider Services { get; init; }

    public required TimeProvider Time { get; init; }

    public required ILogger Logger { get; init; }

    public required GrainCollectionOptions Collection { get; init; }

    public required GrainExtensionRegistry Extensions { get; init; }

    public required RuntimeStatistics Statistics { get; init; }

    /// <summary>Cancelled when the runtime stops; handed to OnActivateAsync.</summary>
    public required CancellationToken Stopping { get; init; }

    /// <summary>The silo's pieces; null in a client, whose activations are observers only.</summary>
    public Catalog? Catalog { get; init; }

    public IGrainDirectory? Directory { get; init; }

    public MessageRouter? Router { get; init; }

    public GrainStorageResolver? Storage { get; init; }

    public Func<SiloAddress, bool> IsSiloDead { get; init; } = static _ => false;
}

/// <summary>Creates grain extension objects (for example the stream consumer) on the activations that need them.</summary>
internal sealed class GrainExtensionRegistry
{
    private readonly Dictionary<Type, Func<IGrainContext, object>> _factories = [];

    public GrainExtensionRegistry(IEnumerable<GrainExtensionRegistration> registrations)
    {
        foreach (var registration in registrations)
        {
            _factories[registration.InterfaceType] = registration.Factory;
        }
    }

    public object Create(Type interfaceType, IGrainContext context) =>
        _factories.TryGetValue(interfaceType, out var factory)
            ? factory(context)
            : throw new InvalidOperationException($"No grain extension is registered for {interfaceType.Name}.");
}

/// <summary>A registered grain extension: the interface and how to create its implementation for an activation.</summary>
internal sealed record GrainExtensionRegistration(Type InterfaceType, Func<IGrainContext, object> Factory);

/// <summary>Counters of one runtime, read by the dashboard, the demo and the tests.</summary>
internal sealed class RuntimeStatistics
{
    private long _activationsCreated;
    private long _activationsFailed;
    private long _activationsDeactivated;
    private long _activationsCollectedIdle;
    private readonly Core.StripedCounter _requestsCompleted = new();
    private readonly Core.StripedCounter _requestsFailed = new();
    private long _requestsTimedOut;
    private long _deadlocksDetected;

    public long ActivationsCreated => Volatile.Read(ref _activationsCreated);

    public long ActivationsFailed => Volatile.Read(ref _activationsFailed);

    public long ActivationsDeactivated => Volatile.Read(ref _activationsDeactivated);

    public long ActivationsCollectedIdle => Volatile.Read(ref _activationsCollectedIdle);

    public long RequestsCompleted => _requestsCompleted.Value;

    public long RequestsFailed => _requestsFailed.Value;

    public long RequestsTimedOut => Volatile.Read(ref _requestsTimedOut);

    public long DeadlocksDetected => Volatile.Read(ref _deadlocksDetected);

    /// <summary>Calls per grain type and method: counts, errors and latency.</summary>
    public Diagnostics.GrainCallStatistics Calls { get; } = new();

    public void ActivationCreated() => Interlocked.Increment(ref _activationsCreated);

    public void ActivationFailed() => Interlocked.Increment(ref _activationsFailed);

    public void ActivationDeactivated(bool idle)
    {
        Interlocked.Increment(ref _activationsDeactivated);
        if (idle)
        {
            Interlocked.Increment(ref _activationsCollectedIdle);
        }
    }

    public void RequestCompleted(bool failed)
    {
        _requestsCompleted.Increment();
        if (failed)
        {
            _requestsFailed.Increment();
        }
    }

    public void RequestTimedOut() => Interlocked.Increment(ref _requestsTimedOut);

    public void DeadlockDetected() => Interlocked.Increment(ref _deadlocksDetected);
}
