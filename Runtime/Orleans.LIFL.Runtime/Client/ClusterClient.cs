using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Core;
using Orleans.LIFL.Runtime.Messaging;
using Orleans.LIFL.Runtime.Observers;
using Orleans.LIFL.Runtime.Streams;
using Orleans.LIFL.Streams;

namespace Orleans.LIFL.Runtime.Client;

/// <summary>
/// A client outside the silos: its calls enter the cluster through a gateway silo (the next live one when a gateway
/// goes away), and the observers it creates are served here. This connector reaches the silos of the same process;
/// the TCP connector reaches remote ones.
/// </summary>
internal sealed partial class ClusterClient : DelegatingClusterClient, IGrainCallRuntime, IClientEndpoint, IAsyncDisposable
{
    private readonly InProcessClusterFabric _fabric;
    private readonly ObserverRegistry _observers;
    private readonly GrainFactory _factory;
    private readonly ILogger _logger;
    private readonly MessagingOptions _messaging;
    private readonly ITimer _sweepTimer;
    private readonly CancellationTokenSource _closing = new();
    private readonly CallTimeouts _timeouts;
    private readonly TimeProvider _time;
    private int _gatewayCursor;
    private volatile bool _closed;

    public ClusterClient(
        InProcessClusterFabric fabric,
        GrainClassRegistry manifest,
        IReadOnlyList<string> streamProviders,
        MessagingOptions messaging,
        ILoggerFactory loggerFactory,
        TimeProvider time)
    {
        _fabric = fabric;
        _messaging = messaging;
        _logger = loggerFactory.CreateLogger<ClusterClient>();
        ClientId = Guid.NewGuid().ToString("N");
        _observers = new ObserverRegistry("client:" + ClientId);
        _factory = new GrainFactory(manifest, _observers) { Runtime = this };
        _time = time;
        _timeouts = new CallTimeouts(time, messaging.ResponseTimeout);

        var services = new ServiceCollection();
        services.AddSingleton<IGrainFactory>(_factory);
        services.AddSingleton<IClusterClient>(this);
        foreach (var name in streamProviders)
        {
            services.AddKeyedSingleton<IStreamProvider>(name, new MemoryStreamProvider(name, _factory, manifest));
        }

        ServiceProvider = services.BuildServiceProvider();

        _observers.Environment = new ActivationEnvironment
        {
            Silo = new SiloAddress(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), 0),
            Runtime = this,
            GrainFactory = _factory,
            Services = ServiceProvider,
            Time = time,
            Logger = _logger,
            Collection = new GrainCollectionOptions(),
            Extensions = new GrainExtensionRegistry([]),
            Statistics = new RuntimeStatistics(),
            Stopping = _closing.Token,
        };
        fabric.AddClient(ClientId, this);
        _sweepTimer = time.CreateTimer(static s => ((ClusterClient)s!).SweepExpiredCalls(), this, _timeouts.SweepPeriod, _timeouts.SweepPeriod);
    }

    public string ClientId { get; }

    public override IServiceProvider ServiceProvider { get; }

    public IGrainFactory GrainFactory => _factory;

    protected override IGrainFactory Factory => _factory;

    public void Send(GrainReference target, RequestBase request)
    {
        if (_closed)
        {
            request.Fail(new RuntimeUnavailableException("The cluster client is closed."));
            return;
        }

        _timeouts.Stamp(request);

        var gateways = _fabric.ReachableSilos.OrderBy(s => s).ToArray();
        for (var i = 0; i < gateways.Length; i++)
        {
            var gateway = gateways[(int)((uint)(Interlocked.Increment(ref _gatewayCursor) + i) % (uint)gateways.Length)];
            if (_fabric.TrySendFromClient(gateway, request))
            {
                return;
            }
        }

        request.Fail(new RuntimeUnavailableException($"No gateway silo is reachable for {request}."));
    }

    bool IClientEndpoint.ReceiveForObserver(RequestBase request) => !_closed && _observers.TryDeliver(request);

    private void SweepExpiredCalls()
    {
        var now = _time.GetTimestamp();
        foreach (var observer in _observers.Activations)
        {
            observer.FailExpiredRequests(now);
        }
    }

    public ValueTask DisposeAsync()
    {
        if (_closed)
        {
            return ValueTask.CompletedTask;
        }

        _closed = true;
        _fabric.RemoveClient(ClientId);
        _sweepTimer.Dispose();
        _closing.Cancel();
        _observers.KillAll(new ObserverNotFoundException($"Client {ClientId} closed."));
        return ((IAsyncDisposable)ServiceProvider).DisposeAsync();
    }
}
