using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Core;
using Orleans.LIFL.Runtime.Messaging;
using Orleans.LIFL.Runtime.Observers;
using Orleans.LIFL.Runtime.Streams;
using Orleans.LIFL.Serialization;
using Orleans.LIFL.Streams;

namespace Orleans.LIFL.Runtime.Client;

/// <summary>
/// A client outside the silos: its calls enter the cluster through a gateway (in this process, or over TCP), and
/// the observers it creates are served here. It learns the cluster's grain classes and stream providers when it
/// connects.
/// </summary>
internal sealed partial class ClusterClient : DelegatingClusterClient, IGrainCallRuntime, IClientTransportHandler, IAsyncDisposable
{
    private readonly IClientTransport _transport;
    private readonly ObserverRegistry _observers;
    private readonly GrainFactory _factory;
    private readonly ILogger _logger;
    private readonly ITimer _sweepTimer;
    private readonly CancellationTokenSource _closing = new();
    private readonly CallTimeouts _timeouts;
    private readonly TimeProvider _time;
    private ServiceProvider? _services;
    private volatile bool _closed;

    public ClusterClient(IClientTransport transport, MessagingOptions messaging, ILoggerFactory loggerFactory, TimeProvider time)
    {
        _transport = transport;
        _logger = loggerFactory.CreateLogger<ClusterClient>();
        ClientId = Guid.NewGuid().ToString("N");
        _observers = new ObserverRegistry("client:" + ClientId);
        _factory = new GrainFactory(null, _observers) { Runtime = this };
        _time = time;
        _timeouts = new CallTimeouts(time, messaging.ResponseTimeout);
        Session = new SerializerSession(this);
        _sweepTimer = time.CreateTimer(static s => ((ClusterClient)s!).SweepExpiredCalls(), this, _timeouts.SweepPeriod, _timeouts.SweepPeriod);
    }

    public string ClientId { get; }

    public SerializerSession Session { get; }

    public override IServiceProvider ServiceProvider =>
        _services ?? throw new InvalidOperationException("The client is not connected yet: call ConnectAsync (UseLiflClient's host does it at start).");

    public IGrainFactory GrainFactory => _factory;

    protected override IGrainFactory Factory => _factory;

    /// <summary>Connects to the cluster and learns its grain classes and stream providers.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        var manifest = await _transport.ConnectAsync(this, cancellationToken).ConfigureAwait(false);
        var resolver = new ManifestResolver(manifest);
        _factory.Resolver = resolver;

        var services = new ServiceCollection();
        services.AddSingleton<IGrainFactory>(_factory);
        services.AddSingleton<IClusterClient>(this);
        foreach (var name in manifest.StreamProviders)
        {
            services.AddKeyedSingleton<IStreamProvider>(name, new MemoryStreamProvider(name, _factory, resolver));
        }

        _services = services.BuildServiceProvider();
        _observers.Environment = new ActivationEnvironment
        {
            Silo = new SiloAddress(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), 0),
            Runtime = this,
            GrainFactory = _factory,
            Services = _services,
            Time = _time,
            Logger = _logger,
            Collection = new GrainCollectionOptions(),
            Extensions = new GrainExtensionRegistry([]),
            Statistics = new RuntimeStatistics(),
            Stopping = _closing.Token,
        };
    }

    public void Send(GrainReference target, RequestBase request)
    {
        if (_closed)
        {
            request.Fail(new RuntimeUnavailableException("The cluster client is closed."));
            return;
        }

        _timeouts.Stamp(request);
        _transport.Send(request);
    }

    bool IClientTransportHandler.DeliverToObserver(RequestBase request) => !_closed && _observers.TryDeliver(request);

    void IClientTransportHandler.OnObserverHostChanged(string hostKey) => _observers.HostKey = hostKey;

    private void SweepExpiredCalls()
    {
        var now = _time.GetTimestamp();
        foreach (var observer in _observers.Activations)
        {
            observer.FailExpiredRequests(now);
        }

        _transport.FailExpiredCalls(now);
    }

    public async ValueTask DisposeAsync()
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        _sweepTimer.Dispose();
        await _closing.CancelAsync().ConfigureAwait(false);
        _observers.KillAll(new ObserverNotFoundException($"Client {ClientId} closed."));
        await _transport.DisposeAsync().ConfigureAwait(false);
        if (_services is not null)
        {
            await _services.DisposeAsync().ConfigureAwait(false);
        }
    }
}
