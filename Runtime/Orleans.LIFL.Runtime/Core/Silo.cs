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
using Orleans.LIFL.Runtime.Observers;
using Orleans.LIFL.Runtime.Placement;
using Orleans.LIFL.Runtime.Storage;

namespace Orleans.LIFL.Runtime.Core;

/// <summary>Assemblies named explicitly as holding grain classes (in addition to those discovered).</summary>
internal sealed record ApplicationPartRegistration(Assembly Assembly);

/// <summary>
/// A silo: it hosts activations, routes calls, takes part in membership and collects idle activations. Its parts
/// are wired here; the host starts and stops it.
/// </summary>
internal sealed partial class Silo : ISiloEndpoint
{
    private readonly InProcessClusterFabric _fabric;
    private readonly IMembershipTable _membershipTable;
    private readonly IGrainDirectory _directory;
    private readonly GrainCollectionOptions _collection;
    private readonly MessagingOptions _messaging;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly DirectoryCache _directoryCache = new();
    private readonly string _siloName;
    private readonly DateTime _startTime = DateTime.UtcNow;
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
        IEnumerable<ApplicationPartRegistration> applicationParts,
        IEnumerable<PlacementDirectorRegistration> placementDirectors,
        IEnumerable<GrainExtensionRegistration> extensions,
        IEnumerable<Streams.StreamProviderRegistration> streamProviders,
        ILoggerFactory loggerFactory,
        TimeProvider time)
    {
        _fabric = fabric;
        _collection = collection.Value;
        _messaging = messaging.Value;
        _time = time;
        _logger = loggerFactory.CreateLogger<Silo>();
        Address = fabric.AllocateSiloAddress();
        _siloName = siloOptions.Value.SiloName ?? $"{System.Environment.MachineName}/{Address.Endpoint}";
        StreamProviderNames = streamProviders.Select(p => p.Name).ToArray();

        Registry = new GrainClassRegistry(ApplicationParts.Discover(applicationParts.Select(p => p.Assembly)), _collection);
        Observers = new ObserverRegistry("silo:" + Address);
        GrainFactory = new GrainFactory(Registry, Observers);
        _membershipTable = membershipTable;
        _directory = directory;
        Membership = new MembershipTableManager(membershipTable, loggerFactory.CreateLogger<MembershipTableManager>());
        Catalog = new Catalog.Catalog();
        var placement = new PlacementService(Address, placementDirectors, services, Membership, fabric);
        Router = new MessageRouter(
            Address, Catalog, Registry, placement, directory, _directoryCache, fabric, Membership, Observers, _messaging, time,
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

    /// <summary>Joins the cluster: Joining, then Active once it is reachable.</summary>
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

        await Membership.WriteEntryAsync(CreateEntry(SiloStatus.Joining)).ConfigureAwait(false);
        _fabric.AddSilo(Address, this);
        Router.Open();
        await Membership.WriteEntryAsync(CreateEntry(SiloStatus.Active)).ConfigureAwait(false);

        _collectionTimer = _time.CreateTimer(static s => ((Silo)s!).CollectIdle(), this, _collection.CollectionQuantum, _collection.CollectionQuantum);
        var sweep = new CallTimeouts(_time, _messaging.ResponseTimeout).SweepPeriod;
        _sweepTimer = _time.CreateTimer(static s => ((Silo)s!).SweepExpiredCalls(), this, sweep, sweep);
        LogStarted(_logger, _siloName, Address, Registry.Classes.Count());
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
        Shutdown(new SiloUnavailableException($"Silo {Address} shut down."));
    }

    /// <summary>Dies on the spot, as a crashed process would: no grain code runs, callers of its activations get errors.</summary>
    public void Kill()
    {
        if (Interlocked.Exchange(ref _state, 3) == 3 || _shutDown)
        {
            return;
        }

        LogKilled(_logger, Address);
        Shutdown(new SiloUnavailableException($"Silo {Address} died while handling the call."));
    }

    private void Shutdown(Exception error)
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
    }

    private MembershipEntry CreateEntry(SiloStatus status) => new()
    {
        Silo = Address,
        Status = status,
        SiloName = _siloName,
        HostName = System.Environment.MachineName,
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
        var dead = current.Members.Values
            .Where(m => m.Status == SiloStatus.Dead && previous.GetStatus(m.Silo) != SiloStatus.Dead)
            .Select(m => m.Silo)
            .ToList();
        if (dead.Count == 0)
        {
            return;
        }

        _directoryCache.RemoveSilos(dead);
        _ = _directory.UnregisterSilos(dead).AsTask();
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

    public SiloRuntimeStatistics GetStatistics() => new(
        Catalog.Count,
        ProcessStatistics.CpuUsagePercent,
        ProcessStatistics.MemoryUsageBytes,
        ProcessStatistics.AvailableMemoryBytes,
        DateTime.UtcNow);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Silo {Name} ({Address}) is active with {GrainClasses} grain classes")]
    private static partial void LogStarted(ILogger logger, string name, SiloAddress address, int grainClasses);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Silo {Address} is shutting down")]
    private static partial void LogStopping(ILogger logger, SiloAddress address);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Silo {Address} was killed")]
    private static partial void LogKilled(ILogger logger, SiloAddress address);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Refreshing the membership view failed")]
    private static partial void LogViewRefreshFailed(ILogger logger, Exception error);
}
