using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Client;

/// <summary>What a client transport reports to its client.</summary>
internal interface IClientTransportHandler
{
    string ClientId { get; }

    SerializerSession Session { get; }

    /// <summary>A call from the cluster to one of the client's observers.</summary>
    bool DeliverToObserver(RequestBase request);

    /// <summary>The client is now reachable at this observer host key (changes when it moves to another gateway).</summary>
    void OnObserverHostChanged(string hostKey);
}

/// <summary>How a client reaches the cluster: through silos of its own process, or through TCP gateways.</summary>
internal interface IClientTransport : IAsyncDisposable
{
    /// <summary>Connects and returns what the cluster offers (grain classes, stream providers).</summary>
    Task<ClusterManifest> ConnectAsync(IClientTransportHandler handler, CancellationToken cancellationToken);

    /// <summary>Sends a call; never throws (a failure completes the request with an error).</summary>
    void Send(RequestBase request);

    void FailExpiredCalls(long now);
}
