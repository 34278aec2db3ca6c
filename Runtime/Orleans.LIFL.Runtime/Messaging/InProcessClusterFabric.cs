using System.Collections.Concurrent;
using System.Net;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Runtime.MembershipService;
using Orleans.LIFL.Runtime.Placement;
using Orleans.LIFL.Runtime.Storage;

namespace Orleans.LIFL.Runtime.Messaging;

/// <summary>How a silo reaches other silos and the clients connected to it: in-process, or over TCP.</summary>
internal interface IClusterTransport : ISiloStatisticsSource
{
    /// <summary>Hands a request to another silo; false when it is known unreachable now (the caller may re-route).
    /// Once handed over, a later failure is reported through the request itself.</summary>
    bool TrySendToSilo(SiloAddress silo, RequestBase request);

    /// <summary>Hands an observer call to a client; false when the client is not connected.</summary>
    bool TrySendToClient(string clientId, RequestBase request);

    /// <summary>
    /// Whether <paramref name="silo"/>'s process is known to have died in the last second, sooner than the cluster can
    /// declare it dead (a silo of this node whose beacon went out unattended); false when that is not known.
    /// </summary>
    bool ProcessJustDied(SiloAddress silo) => false;
}

/// <summary>A silo as seen by the other silos and clients of the same process.</summary>
internal interface ISiloEndpoint
{
    /// <summary>Accepts a request addressed to a grain this silo hosts (or was chosen to host); false if it is gone.</summary>
    bool ReceiveFromSilo(RequestBase request);

    /// <summary>Accepts a request from a client connected to this silo as its gateway.</summary>
    bool ReceiveFromClient(RequestBase request);

    SiloRuntimeStatistics GetStatistics();
}

/// <summary>A client as seen by silos: they deliver calls to its observers.</summary>
internal interface IClientEndpoint
{
    bool ReceiveForObserver(RequestBase request);
}

/// <summary>
/// The shared back end of the silos and clients of one process: the embedded cluster. It stands in for what a real
/// deployment spreads over TCP and PostgreSQL: the network between silos, the membership table, the grain directory
/// and storage.
/// </summary>
internal sealed class InProcessClusterFabric : IClusterTransport, IDisposable
{
    private readonly ConcurrentDictionary<SiloAddress, ISiloEndpoint> _silos = new();
    private readonly ConcurrentDictionary<string, IClientEndpoint> _clients = new(StringComparer.Ordinal);
    private int _nextPort = 11111;

    public InMemoryMembershipTable Membership { get; } = new();

    public InMemoryGrainDirectory Directory { get; } = new();

    public MemoryStorageBackend Storage { get; } = new();

    /// <summary>The in-memory blob storage's buffers (references into the node's pool, released with the fabric).</summary>
    public MemoryBlobBackend Blobs { get; } = new();

    public void Dispose() => Blobs.Dispose();

    /// <summary>An address for a new silo of this process (loopback, a fresh port and generation).</summary>
    public SiloAddress AllocateSiloAddress() =>
        new(new IPEndPoint(IPAddress.Loopback, Interlocked.Increment(ref _nextPort) - 1), SiloAddress.NewGeneration());

    public void AddSilo(SiloAddress address, ISiloEndpoint endpoint) => _silos[address] = endpoint;

    public void RemoveSilo(SiloAddress address) => _silos.TryRemove(address, out _);

    public IReadOnlyCollection<SiloAddress> ReachableSilos => [.. _silos.Keys];

    public bool TrySendToSilo(SiloAddress silo, RequestBase request) =>
        _silos.TryGetValue(silo, out var endpoint) && endpoint.ReceiveFromSilo(request);

    public bool TrySendFromClient(SiloAddress gateway, RequestBase request) =>
        _silos.TryGetValue(gateway, out var endpoint) && endpoint.ReceiveFromClient(request);

    public void AddClient(string clientId, IClientEndpoint endpoint) => _clients[clientId] = endpoint;

    public void RemoveClient(string clientId) => _clients.TryRemove(clientId, out _);

    public bool TrySendToClient(string clientId, RequestBase request) =>
        _clients.TryGetValue(clientId, out var endpoint) && endpoint.ReceiveForObserver(request);

    public SiloRuntimeStatistics? GetStatistics(SiloAddress silo) =>
        _silos.TryGetValue(silo, out var endpoint) ? endpoint.GetStatistics() : null;
}
