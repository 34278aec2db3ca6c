using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Runtime.MembershipService;
using Orleans.LIFL.Runtime.Observers;
using Orleans.LIFL.Runtime.Placement;

namespace Orleans.LIFL.Runtime.Messaging;

/// <summary>
/// Takes every request that enters a silo — from its own grains, from host code, from clients and from other silos —
/// to the activation that must run it: local catalog first, then the directory cache, the directory, and finally
/// placement of a new activation (grains whose placement does without the directory: the silo it names, every call).
/// </summary>
internal sealed partial class MessageRouter
{
    /// <summary>Where the directors of directory-less grains placed them (see <see cref="RouteByPlacementAsync"/>).</summary>
    private readonly DirectoryCache _placed = new();

    private readonly SiloAddress _local;
    private readonly Catalog.Catalog _catalog;
    private readonly GrainClassRegistry _registry;
    private readonly PlacementService _placement;
    private readonly IGrainDirectory _directory;
    private readonly DirectoryCache _cache;
    private readonly IClusterTransport _network;
    private readonly MembershipTableManager _membership;
    private readonly ObserverRegistry _observers;
    private readonly MessagingOptions _options;
    private readonly ILogger _logger;
    private readonly CallTimeouts _timeouts;
    private volatile bool _stopped = true;

    public MessageRouter(
        SiloAddress local,
        Catalog.Catalog catalog,
        GrainClassRegistry registry,
        PlacementService placement,
        IGrainDirectory directory,
        DirectoryCache cache,
        IClusterTransport network,
        MembershipTableManager membership,
        ObserverRegistry observers,
        MessagingOptions options,
        TimeProvider time,
        ILogger<MessageRouter> logger)
    {
        _local = local;
        _catalog = catalog;
        _registry = registry;
        _placement = placement;
        _directory = directory;
        _cache = cache;
        _network = network;
        _membership = membership;
        _observers = observers;
        _options = options;
        _logger = logger;
        _timeouts = new CallTimeouts(time, options.ResponseTimeout);
    }

    /// <summary>Starts accepting requests (the silo is joining the cluster).</summary>
    public void Open() => _stopped = false;

    /// <summary>After this, requests that reach the silo are refused (it is dead or gone).</summary>
    public void Stop() => _stopped = true;

    /// <summary>A call made on this silo, or arriving from a client through it.</summary>
    public void Send(RequestBase request)
    {
        if (_stopped)
        {
            request.Fail(new SiloUnavailableException($"Silo {_local} is not running; it cannot send {request}."));
            return;
        }

        _timeouts.Stamp(request);
        Route(request);
    }

    /// <summary>Another silo decided the grain lives here.</summary>
    public bool ReceiveFromSilo(RequestBase request)
    {
        if (_stopped)
        {
            return false;
        }

        if (ObserverRegistry.IsObserver(request.TargetId))
        {
            RouteToObserver(request);
            return true;
        }

        if (!TryGetClass(request, out var classInfo))
        {
            return true;
        }

        if (classInfo.IsStatelessWorker)
        {
            EnqueueToWorkers(request, classInfo);
        }
        else
        {
            ActivateLocally(request, classInfo);
        }

        return true;
    }

    /// <summary>A call from a client that entered the cluster through this silo (its deadline came with it).</summary>
    public void ReceiveFromClient(RequestBase request)
    {
        if (_stopped)
        {
            request.Fail(new SiloUnavailableException($"Gateway {_local} is not running; it cannot take {request}."));
            return;
        }

        Route(request);
    }

    /// <summary>The activation that had the request lost the directory race to an activation on <paramref name="silo"/>.</summary>
    public void Forward(RequestBase request, SiloAddress silo)
    {
        if (!CountForward(request))
        {
            return;
        }

        if (silo.Equals(_local))
        {
            Route(request);
        }
        else if (!_network.TrySendToSilo(silo, request))
        {
            _ = OnUndeliverableAsync(request, silo);
        }
    }

    /// <summary>
    /// A request that never reached <paramref name="silo"/> (it could not be connected to). If the cluster has
    /// declared that silo dead, which this silo's view may not show yet, the grain can live elsewhere: route again.
    /// Otherwise it must not be activated elsewhere (it would have two activations): fail clearly. For a silo whose
    /// process is known to have died just now the table is not read again: the cluster cannot have declared it dead
    /// yet, and the caller (a session's client, an expert call) is better off failing over at once than ~15 ms later.
    /// </summary>
    public async Task OnUndeliverableAsync(RequestBase request, SiloAddress silo)
    {
        try
        {
            _cache.Remove(request.TargetId);
            if (!_membership.CurrentView.IsDeadOrSuperseded(silo) && !_network.ProcessJustDied(silo))
            {
                await _membership.RefreshAsync().ConfigureAwait(false);
            }

            if (_membership.CurrentView.IsDeadOrSuperseded(silo))
            {
                Reroute(request);
            }
            else
            {
                request.Fail(Unreachable(request.TargetId, silo));
            }
        }
        catch (Exception error)
        {
            request.Fail(error);
        }
    }

    /// <summary>
    /// The grain is registered on a silo this one cannot reach. It must not be activated anywhere else until the
    /// cluster declares that silo dead (or the grain would have two activations).
    /// </summary>
    private SiloUnavailableException Unreachable(GrainId grainId, SiloAddress silo)
    {
        _placement.MarkUnreachable(silo);
        return new SiloUnavailableException(
            $"{grainId} lives on silo {silo}, which is unreachable; it will be reactivated on another silo once the cluster declares {silo} dead.");
    }

    /// <summary>The activation that had the request went away before running it: route it afresh.</summary>
    public void Reroute(RequestBase request)
    {
        if (CountForward(request))
        {
            Route(request);
        }
    }

    private bool CountForward(RequestBase request)
    {
        if (++request.ForwardCount <= _options.MaxForwardCount)
        {
            return true;
        }

        request.Fail(new LiflException(
            $"{request} was re-routed {request.ForwardCount - 1} times (the grain kept moving or its activation kept failing); giving up."));
        return false;
    }

    private void Route(RequestBase request)
    {
        var grainId = request.TargetId;
        if (ObserverRegistry.IsObserver(grainId))
        {
            RouteToObserver(request);
            return;
        }

        if (!TryGetClass(request, out var classInfo))
        {
            return;
        }

        if (classInfo.IsStatelessWorker)
        {
            EnqueueToWorkers(request, classInfo);
            return;
        }

        if (_catalog.TryGet(grainId, out var activation) && activation.Enqueue(request) == EnqueueResult.Accepted)
        {
            return;
        }

        if (!classInfo.Placement.UsesGrainDirectory(grainId))
        {
            _ = RouteByPlacementAsync(request, classInfo);
            return;
        }

        if (_cache.TryGet(grainId, out var cached) && !cached.Silo.Equals(_local))
        {
            if (_network.TrySendToSilo(cached.Silo, request))
            {
                return;
            }

            _ = OnUndeliverableAsync(request, cached.Silo);
            return;
        }

        _ = RouteThroughDirectoryAsync(request, classInfo);
    }

    private async Task RouteThroughDirectoryAsync(RequestBase request, GrainClassInfo classInfo)
    {
        try
        {
            var grainId = request.TargetId;
            var address = await _directory.Lookup(grainId).ConfigureAwait(false);
            if (address is not null && !_membership.CurrentView.IsDeadOrSuperseded(address.Silo))
            {
                if (address.Silo.Equals(_local))
                {
                    ActivateLocally(request, classInfo);
                    return;
                }

                _cache.Put(address);
                if (!_network.TrySendToSilo(address.Silo, request))
                {
                    await OnUndeliverableAsync(request, address.Silo).ConfigureAwait(false);
                }

                return;
            }

            for (var attempt = 0; ; attempt++)
            {
                var silo = await _placement.PlaceAsync(classInfo, grainId, request.Method.InterfaceType).ConfigureAwait(false);
                if (silo.Equals(_local))
                {
                    ActivateLocally(request, classInfo);
                    return;
                }

                if (_network.TrySendToSilo(silo, request))
                {
                    return;
                }

                // The chosen silo cannot be reached: place again, avoiding it for a while.
                _placement.MarkUnreachable(silo);
                if (attempt == 2)
                {
                    request.Fail(new SiloUnavailableException($"Silo {silo}, chosen to host {grainId}, is unreachable."));
                    return;
                }
            }
        }
        catch (Exception error)
        {
            LogRoutingFailed(_logger, error, request.ToString());
            request.Fail(error);
        }
    }

    /// <summary>
    /// A grain whose placement does without the directory: its director names the one silo it may live on, for every
    /// call (it throws when that silo cannot host it, and the call fails with its error).
    /// </summary>
    private async Task RouteByPlacementAsync(RequestBase request, GrainClassInfo classInfo)
    {
        try
        {
            // The director's answer stands while its silo stays available (the strategy promises the same answer).
            var silo = _placed.TryGet(request.TargetId, out var placed) && _placement.IsAvailable(placed.Silo) ? placed.Silo : null;
            if (silo is null)
            {
                silo = await _placement.PlaceAsync(classInfo, request.TargetId, request.Method.InterfaceType).ConfigureAwait(false);
                _placed.Put(new GrainAddress(request.TargetId, silo, default));
            }

            if (silo.Equals(_local))
            {
                ActivateLocally(request, classInfo);
            }
            else if (!_network.TrySendToSilo(silo, request))
            {
                await OnUndeliverableAsync(request, silo).ConfigureAwait(false);
            }
        }
        catch (Exception error)
        {
            if (error is not SiloUnavailableException)
            {
                // The silo being gone is the caller's to handle (a failover, say), not a routing fault.
                LogRoutingFailed(_logger, error, request.ToString());
            }

            request.Fail(error);
        }
    }

    private void ActivateLocally(RequestBase request, GrainClassInfo classInfo)
    {
        for (var attempt = 0; attempt < 4; attempt++)
        {
            if (_stopped)
            {
                request.Fail(new SiloUnavailableException($"Silo {_local} stopped before it could run {request}."));
                return;
            }

            var activation = _catalog.GetOrCreate(request.TargetId, classInfo);
            if (activation.Enqueue(request) == EnqueueResult.Accepted)
            {
                return;
            }
        }

        request.Fail(new LiflException($"Could not activate {request.TargetId} on {_local}: its activations kept going away."));
    }

    private void EnqueueToWorkers(RequestBase request, GrainClassInfo classInfo)
    {
        for (var attempt = 0; attempt < 4; attempt++)
        {
            if (_catalog.GetOrCreateWorkerGroup(request.TargetId, classInfo).Enqueue(request) == EnqueueResult.Accepted)
            {
                return;
            }
        }

        request.Fail(new LiflException($"Could not start a stateless worker for {request.TargetId} on {_local}."));
    }

    private void RouteToObserver(RequestBase request)
    {
        var host = ObserverRegistry.HostOf(request.TargetId);
        bool delivered;
        if (host.StartsWith("silo:", StringComparison.Ordinal))
        {
            var silo = SiloAddress.Parse(host["silo:".Length..]);
            delivered = silo.Equals(_local) ? _observers.TryDeliver(request) : _network.TrySendToSilo(silo, request);
        }
        else if (host.StartsWith("client:", StringComparison.Ordinal))
        {
            // "client:id" (reachable through any silo of this process) or "client:id@gateway" (through that gateway).
            var client = host["client:".Length..];
            var at = client.IndexOf('@', StringComparison.Ordinal);
            if (at < 0)
            {
                delivered = _network.TrySendToClient(client, request);
            }
            else
            {
                var gateway = SiloAddress.Parse(client[(at + 1)..]);
                delivered = gateway.Equals(_local)
                    ? _network.TrySendToClient(client[..at], request)
                    : _network.TrySendToSilo(gateway, request);
            }
        }
        else
        {
            delivered = false;
        }

        if (!delivered)
        {
            request.Fail(new ObserverNotFoundException($"The host of observer {request.TargetId} is gone."));
        }
    }

    private bool TryGetClass(RequestBase request, out GrainClassInfo classInfo)
    {
        if (_registry.TryGet(request.TargetId.Type, out classInfo))
        {
            return true;
        }

        request.Fail(new GrainTypeResolutionException($"No grain class with grain type '{request.TargetId.Type}' is registered on silo {_local} (call {request})."));
        return false;
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Routing {Request} failed")]
    private static partial void LogRoutingFailed(ILogger logger, Exception error, string request);
}
