using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Messaging;

namespace Orleans.LIFL.Runtime.Client;

/// <summary>A client of the silos in its own process (the in-process test cluster): calls go to any live silo.</summary>
internal sealed class InProcessClientTransport(InProcessClusterFabric fabric, Func<ClusterManifest> manifest) : IClientTransport, IClientEndpoint
{
    private IClientTransportHandler? _handler;
    private int _gatewayCursor;

    public Task<ClusterManifest> ConnectAsync(IClientTransportHandler handler, CancellationToken cancellationToken)
    {
        _handler = handler;
        fabric.AddClient(handler.ClientId, this);
        handler.OnObserverHostChanged("client:" + handler.ClientId);
        return Task.FromResult(manifest());
    }

    public void Send(RequestBase request)
    {
        var gateways = fabric.ReachableSilos.OrderBy(s => s).ToArray();
        for (var i = 0; i < gateways.Length; i++)
        {
            var gateway = gateways[(int)((uint)(Interlocked.Increment(ref _gatewayCursor) + i) % (uint)gateways.Length)];
            if (fabric.TrySendFromClient(gateway, request))
            {
                return;
            }
        }

        request.Fail(new RuntimeUnavailableException($"No gateway silo is reachable for {request}."));
    }

    bool IClientEndpoint.ReceiveForObserver(RequestBase request) => _handler?.DeliverToObserver(request) ?? false;

    public void FailExpiredCalls(long now)
    {
    }

    public ValueTask DisposeAsync()
    {
        if (_handler is not null)
        {
            fabric.RemoveClient(_handler.ClientId);
        }

        return ValueTask.CompletedTask;
    }
}
