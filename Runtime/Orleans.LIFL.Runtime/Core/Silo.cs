using System.Reflection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Runtime.MembershipService;
using Orleans.LIFL.Runtime.Messaging;
using Orleans.LIFL.Runtime.Networking;
using Orleans.LIFL.Runtime.Observers;
using Orleans.LIFL.Runtime.Placement;
using Orleans.LIFL.Runtime.Storage;

namespace Orleans.LIFL.Runtime.Core;

/// <summary>Assemblies named explicitly as holding grain classes (in addition to those discovered).</summary>
internal sealed record ApplicationPartRegistration(Assembly Assembly);

/// <summary>
/// A silo: it hosts activations, routes calls, takes part in membership and collects idle activations. It talks to
/// other silos either within this process (embedded) or over TCP (cluster), where it also detects failures. Its
/// parts are wired here; the host starts and stops it.
/// </summary>
internal sealed partial class Silo : ISiloEndpoint, ISiloTransportHandler
{
    private readonly InProcessClusterFabric _fabric;
    private readonly Dataplane.NodeDataplane _dataplane;
    private readonly ISiloStatisticsSource _statisticsSource;
    private readonly TcpSiloTransport? _tcp;
    private readonly IMembershipTable _membershipTable;
    private readonly IGrainDirectory _directory;
    private readonly GrainCollectionOptions _collection;
    private readonly MessagingOptions _messaging;
    private readonly MembershipOptions _membershipOptions;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly DirectoryCache _directoryCache = new();
    private readonly string _siloName;
    private readonly DateTime _startTime = DateTime.UtcNow;
    private readonly TaskCompletionSource _declaredDead = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ClusterManifest? _manifest;
    private ClusterHealthMonitor? _healthMonitor;
    private ITimer? _collectionTimer;
    private ITimer? _sweepTimer;
    private int _state;
    private volatile bool _shutDown;

    public Silo(
        IServiceProvider services,
        InProcessClusterFabric fabric,
        IMembershipTable membershipTable,
        IGrainDirectory directory,
        IOptions<GrainCollectionOptions> collection,
        IOptions<MessagingOptions> messaging,
        IOptions<SiloOptions> siloOptions,
        IOptions<EndpointOptions> endpoints,
        IOptions<ClusterOptions> cluster,
        IOptions<ConnectionOptions> connections,
        IOptions<MembershipOptions> membershipOptions,
        IEnumerable<ApplicationPartRegistration> applicationParts,
        IEnumerable<PlacementDirectorRegistration> placementDirectors,
        IEnumerable<GrainExtensionRegistration> extensions,
        IEnumerable<Streams.StreamProviderRegistration> streamProviders,
        ILoggerFactory loggerFactory,
        TimeProvider time,
        Dataplane.NodeDataplane dataplane)
    {
        _fabric = fabric;
        _dataplane = dataplane;
        _collection = collection.Value;
        _messaging = messaging.Value;
        _membershipOptions = membershipOptions.Value;
        _time = time;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<Silo>();
        IClusterTransport transport;
        if (endpoints.Value.Enabled)
        {
            _tcp = new TcpSiloTransport(endpoints.Value, cluster.Value, connections.Value, time, loggerFactory, dataplane);
            Address = _tcp.Address;
            transport = _tcp;
        }
        else
        {
            Address = fabric.AllocateSiloAddress();
            transport = fabric;
        }

        _siloName = siloOptions.Value.SiloName ?? $"{System.Environment.MachineName}/{Address.Endpoint}";
        StreamProviderNames = streamProviders.Select(p => p.Name).ToArray();

        Registry = new GrainClassRegistry(ApplicationParts.Discover(applicationParts.Select(p => p.Assembly)), _collection);
        Observers = new ObserverRegistry("silo:" + Address);
        GrainFactory = new GrainFactory(Registry, Observers);
        _membershipTable = membershipTable;
        _directory = directory;
        Membership = new MembershipTableManager(membershipTable, loggerFactory.CreateLogger<MembershipTableManager>());
        Catalog = new Catalog.Catalog();
        var placement = new PlacementService(Address, placementDirectors, services, Membership, transport);
        _statisticsSource = transport;
        Router = new MessageRouter(
            Address, Catalog, Registry, placement, directory, _directoryCache, transport, Membership, Observers, _messaging, time,
            loggerFactory.CreateLogger<MessageRouter>());
        GrainFactory.Runtime = new SiloCallRuntime(Router, GrainFactory);
        Statistics = new RuntimeStatistics();
        var environment = new ActivationEnvironment
        {
            Silo = Address,
            Runtime = GrainFactory.Runtime,
            GrainFactory = GrainFactory,
            Services = services,
            Time = time,
            Logger = loggerFactory.CreateLogger("Orleans.LIFL.Runtime.Activation"),
            Collection = _collection,
            Extensions = new GrainExtensionRegistry(extensions),
            Statistics = Statistics,
            Stopping = _stopping.Token,
            Catalog = Catalog,
            Directory = directory,
            Router = Router,
            Storage = new GrainStorageResolver(services),
            IsSiloDead = silo => Membership.CurrentView.IsDeadOrSuperseded(silo),
        };
        Catalog.Environment = environment;
        Observers.Environment = environment;
    }

    public SiloAddress Address { get; }

    /// <summary>Where clients connect (TCP silos that are gateways only).</summary>
    public System.Net.IPEndPoint? GatewayEndpoint => _tcp?.GatewayEndpoint;

    /// <summary>Clients connected to this silo's gateway now.</summary>
    internal int ConnectedClients => _tcp?.ConnectedClients ?? 0;

    /// <summary>Client connections this silo's gateway accepted since it started.</summary>
    internal long AcceptedClientConnections => _tcp?.AcceptedClientConnections ?? 0;

    /// <summary>The stream providers configured on this silo; clients offer the same ones.</summary>
    public IReadOnlyList<string> StreamProviderNames { get; }

    public string Name => _siloName;

    public GrainFactory GrainFactory { get; }

    public GrainClassRegistry Registry { get; }

    public Catalog.Catalog Catalog { get; }

    public ObserverRegistry Observers { get; }

    public MessageRouter Router { get; }

    public MembershipTableManager Membership { get; }

    public RuntimeStatistics Statistics { get; }

    public SiloStatus Status => Membership.CurrentView.GetStatus(Address);

    /// <summary>Completes when the cluster declared this silo dead and it stopped itself.</summary>
    public Task DeclaredDead => _declaredDead.Task;

    public ClusterManifest Manifest => _manifest ??= ClusterManifest.From(Registry, StreamProviderNames);

    /// <summary>Joins the cluster: Joining, then (having reached the active silos) Active.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            throw new InvalidOperationException($"Silo {Address} was already started.");
        }

        Membership.ViewChanged += OnViewChanged;
        if (_membershipTable is InMemoryMembershipTable inMemory)
        {
            inMemory.Changed += OnTableChanged;
        }

        await _membershipTable.InitializeMembershipTable(tryInitTableVersion: true).ConfigureAwait(false);
        await Membership.WriteEntryAsync(CreateEntry(SiloStatus.Joining)).ConfigureAwait(false);
        if (_tcp is not null)
        {
            _tcp.Start(this, GrainFactory.Runtime);
        }
        else
        {
            _fabric.AddSilo(Address, this);
        }

        Router.Open();
        if (_tcp is not null)
        {
            await CheckConnectivityAsync(cancellationToken).ConfigureAwait(false);
        }

        await Membership.WriteEntryAsync(CreateEntry(SiloStatus.Active)).ConfigureAwait(false);
        _tcp?.BroadcastMembershipChanged(Membership.CurrentView.ActiveSilos);
        if (_tcp is not null)
        {
            _healthMonitor = new ClusterHealthMonitor(
                Address, Membership, _tcp, _membershipOptions, () => CreateEntry(SiloStatus.Active), _time, _loggerFactory.CreateLogger<ClusterHealthMonitor>());
            _healthMonitor.Start();
        }

        _collectionTimer = _time.CreateTimer(static s => ((Silo)s!).CollectIdle(), this, _collection.CollectionQuantum, _collection.CollectionQuantum);
        var sweep = new CallTimeouts(_time, _messaging.ResponseTimeout).SweepPeriod;
        _sweepTimer = _time.CreateTimer(static s => ((Silo)s!).SweepExpiredCalls(), this, sweep, sweep);
        LogStarted(_logger, _siloName, Address, Registry.Classes.Count());
    }

    /// <summary>
    /// A joining silo must reach every active silo that still shows signs of life before it becomes active. One it
    /// cannot reach whose IAmAlive is recent may have just crashed (a whole cluster restarted at once): the joiner waits
    /// until it answers or its IAmAlive goes stale, and gives up only if it keeps updating it while unreachable.
    /// </summary>
    private async Task CheckConnectivityAsync(CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        var waiting = new HashSet<SiloAddress>();
        while (true)
        {
            var view = Membership.CurrentView;
            var others = view.Members.Values.Where(m => m.Status == SiloStatus.Active && !m.Silo.Equals(Address)).ToList();
            var answers = await Task.WhenAll(others.Select(m => _tcp!.PingAsync(m.Silo, _membershipOptions.ProbeTimeout * 2, cancellationToken))).ConfigureAwait(false);
            MembershipEntry? unreachable = null;
            for (var i = 0; i < others.Count; i++)
            {
                var entry = others[i];
                if (answers[i] is not null)
                {
                    continue;
                }

                if (DateTime.UtcNow - entry.IAmAliveTime > _membershipOptions.StaleAfter)
                {
                    LogIgnoringStaleSilo(_logger, entry.Silo, entry.IAmAliveTime);
                    continue;
                }

                unreachable = entry;
                if (waiting.Add(entry.Silo))
                {
                    LogWaitingForSilo(_logger, entry.Silo, entry.IAmAliveTime);
                }
            }

            if (unreachable is null)
            {
                return;
            }

            if (DateTime.UtcNow - started > _membershipOptions.StaleAfter + (_membershipOptions.IAmAlivePeriod * 2))
            {
                // Long enough for a dead silo's IAmAlive to go stale: this one is alive and out of reach.
                await Membership.WriteEntryAsync(CreateEntry(SiloStatus.Dead)).ConfigureAwait(false);
                throw new InvalidOperationException(
                    $"Silo {Address} cannot reach active silo {unreachable.Silo} (alive at {unreachable.IAmAliveTime:O}); check the network and that all silos use the same cluster secret.");
            }

            await Task.Delay(_membershipOptions.ProbePeriod, _time, cancellationToken).ConfigureAwait(false);
            await Membership.RefreshAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Leaves gracefully: deactivates every activation (running OnDeactivateAsync) and marks itself dead.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _state, 2, 1) != 1)
        {
            return;
        }

        LogStopping(_logger, Address);
        await Membership.WriteEntryAsync(CreateEntry(SiloStatus.ShuttingDown)).ConfigureAwait(false);
        _tcp?.BroadcastMembershipChanged(Membership.CurrentView.ActiveSilos);
        var reason = new DeactivationReason(DeactivationReasonCode.ShuttingDown, "the silo is shutting down");
        for (var round = 0; round < 3; round++)
        {
            var activations = Catalog.Snapshot();
            if (activations.Count == 0)
            {
                break;
            }

            foreach (var activation in activations)
            {
                activation.StartDeactivation(reason);
            }

            var all = Task.WhenAll(activations.Select(a => a.Deactivated));
            await Task.WhenAny(all, Task.Delay(_collection.DeactivationTimeout, cancellationToken)).ConfigureAwait(false);
        }

        await Membership.WriteEntryAsync(CreateEntry(SiloStatus.Dead)).ConfigureAwait(false);
        _tcp?.BroadcastMembershipChanged(Membership.CurrentView.ActiveSilos);
        await ShutdownAsync(new SiloUnavailableException($"Silo {Address} shut down.")).ConfigureAwait(false);
    }

    /// <summary>Dies on the spot, as a crashed process would: no grain code runs, callers of its activations get errors.</summary>
    public void Kill()
    {
        if (Interlocked.Exchange(ref _state, 3) == 3 || _shutDown)
        {
            return;
        }

        LogKilled(_logger, Address);
        _ = ShutdownAsync(new SiloUnavailableException($"Silo {Address} died while handling the call."));
    }

    private async Task ShutdownAsync(Exception error)
    {
        _shutDown = true;
        Router.Stop();
        _fabric.RemoveSilo(Address);
        if (_membershipTable is InMemoryMembershipTable inMemory)
        {
            inMemory.Changed -= OnTableChanged;
        }

        _collectionTimer?.Dispose();
        _sweepTimer?.Dispose();
        _stopping.Cancel();
        foreach (var activation in Catalog.Snapshot())
        {
            activation.Kill(error);
            Catalog.Remove(activation);
        }

        Observers.KillAll(error);
        if (_healthMonitor is not null)
        {
            await _healthMonitor.DisposeAsync().ConfigureAwait(false);
        }

        if (_tcp is not null)
        {
            await _tcp.DisposeAsync().ConfigureAwait(false);
        }
    }

    private MembershipEntry CreateEntry(SiloStatus status) => new()
    {
        Silo = Address,
        Status = status,
        SiloName = _siloName,
        HostName = System.Environment.MachineName,
        ProxyPort = _tcp?.GatewayEndpoint?.Port ?? 0,
        StartTime = _startTime,
        IAmAliveTime = DateTime.UtcNow,
    };

    private void OnTableChanged() => _ = RefreshViewAsync();

    private async Task RefreshViewAsync()
    {
        try
        {
            await Membership.RefreshAsync().ConfigureAwait(false);
        }
        catch (Exception error)
        {
            LogViewRefreshFailed(_logger, error);
        }
    }

    private void OnViewChanged(ClusterView previous, ClusterView current)
    {
        if (current.GetStatus(Address) == SiloStatus.Dead && previous.GetStatus(Address) != SiloStatus.Dead && _state == 1)
        {
            // The cluster declared this silo dead (it was unreachable): it must not go on serving.
            LogDeclaredDead(_logger, Address);
            Kill();
            _declaredDead.TrySetResult();
            return;
        }

        var dead = current.Members.Values
            .Where(m => m.Status == SiloStatus.Dead && previous.GetStatus(m.Silo) != SiloStatus.Dead && !m.Silo.Equals(Address))
            .Select(m => m.Silo)
            .ToList();
        if (dead.Count > 0)
        {
            _directoryCache.RemoveSilos(dead);
            _ = RemoveDirectoryEntriesAsync(dead);
            foreach (var silo in dead)
            {
                _tcp?.ForgetSilo(silo, new SiloUnavailableException($"Silo {silo} was declared dead."));
            }
        }

        if (!current.ActiveSilos.SequenceEqual(previous.ActiveSilos))
        {
            _tcp?.PublishClusterView();
        }

        // A death this silo declared (its vote completed it) reaches the others now rather than at their next refresh.
        if (dead.Count > 0 && _tcp is not null)
        {
            _tcp.BroadcastMembershipChanged(current.ActiveSilos);
        }
    }

    private async Task RemoveDirectoryEntriesAsync(IReadOnlyCollection<SiloAddress> dead)
    {
        try
        {
            await _directory.UnregisterSilos(dead).ConfigureAwait(false);
        }
        catch (Exception error)
        {
            // Harmless for correctness (registrations replace dead silos' entries), but the directory keeps stale rows.
            LogDirectoryCleanupFailed(_logger, error, string.Join(", ", dead));
        }
    }

    private void CollectIdle()
    {
        var now = _time.GetTimestamp();
        foreach (var activation in Catalog.Enumerate())
        {
            activation.TryCollectIdle(now);
        }
    }

    private void SweepExpiredCalls()
    {
        var now = _time.GetTimestamp();
        foreach (var activation in Catalog.Enumerate())
        {
            activation.FailExpiredRequests(now);
        }

        foreach (var observer in Observers.Activations)
        {
            observer.FailExpiredRequests(now);
        }

        _tcp?.FailExpiredCalls(now);
    }

    bool ISiloEndpoint.ReceiveFromSilo(RequestBase request) => Router.ReceiveFromSilo(request);

    bool ISiloEndpoint.ReceiveFromClient(RequestBase request)
    {
        if (Status is not (SiloStatus.Active or SiloStatus.Joining))
        {
            return false;
        }

        Router.Send(request);
        return true;
    }

    bool ISiloTransportHandler.ReceiveFromSilo(RequestBase request) => Router.ReceiveFromSilo(request);

    void ISiloTransportHandler.ReceiveFromClient(RequestBase request) => Router.ReceiveFromClient(request);

    void ISiloTransportHandler.OnMembershipGossip() => _ = RefreshViewAsync();

    void ISiloTransportHandler.OnUndeliverable(RequestBase request, SiloAddress silo) => _ = Router.OnUndeliverableAsync(request, silo);

    SiloRuntimeStatistics ISiloTransportHandler.CurrentStatistics() => GetStatistics();

    IReadOnlyList<string> ISiloTransportHandler.GatewayEndpoints() =>
        Membership.CurrentView.Members.Values
            .Where(m => m.Status == SiloStatus.Active && m.ProxyPort > 0)
            .Select(m => new System.Net.IPEndPoint(m.Silo.Endpoint.Address, m.ProxyPort).ToString())
            .ToList();

    /// <summary>Another silo's latest published statistics (this one's own, computed now).</summary>
    public SiloRuntimeStatistics? GetStatistics(SiloAddress silo) => silo.Equals(Address) ? GetStatistics() : _statisticsSource.GetStatistics(silo);

    public SiloRuntimeStatistics GetStatistics() => new(
        Catalog.Count,
        ProcessStatistics.CpuUsagePercent,
        ProcessStatistics.MemoryUsageBytes,
        ProcessStatistics.AvailableMemoryBytes,
        DateTime.UtcNow,
        Environment.ProcessorCount,
        _dataplane.NodeId,
        ProcessStatistics.CpuSeconds,
        ProcessStatistics.PeakMemoryBytes);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Silo {Name} ({Address}) is active with {GrainClasses} grain classes")]
    private static partial void LogStarted(ILogger logger, string name, SiloAddress address, int grainClasses);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Silo {Address} is shutting down")]
    private static partial void LogStopping(ILogger logger, SiloAddress address);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Silo {Address} was killed")]
    private static partial void LogKilled(ILogger logger, SiloAddress address);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Refreshing the membership view failed")]
    private static partial void LogViewRefreshFailed(ILogger logger, Exception error);

    [LoggerMessage(EventId = 5, Level = LogLevel.Critical, Message = "The cluster declared silo {Address} dead; it stops itself")]
    private static partial void LogDeclaredDead(ILogger logger, SiloAddress address);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Could not remove the directory entries of dead silos {Silos}")]
    private static partial void LogDirectoryCleanupFailed(ILogger logger, Exception error, string silos);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "Joining: silo {Silo} does not answer but wrote IAmAlive at {IAmAlive:O}; waiting until it answers or goes stale")]
    private static partial void LogWaitingForSilo(ILogger logger, SiloAddress silo, DateTime iAmAlive);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Joining without reaching {Silo}: its last IAmAlive ({IAmAlive:O}) is stale")]
    private static partial void LogIgnoringStaleSilo(ILogger logger, SiloAddress silo, DateTime iAmAlive);
}
