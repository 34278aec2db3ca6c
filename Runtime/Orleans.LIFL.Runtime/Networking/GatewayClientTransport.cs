using System.Diagnostics.CodeAnalysis;
using System.Net;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Client;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Networking;

/// <summary>
/// A client's link to the cluster over TCP: one connection to a gateway, chosen from the configured list and then
/// from the gateways the cluster reports, and a standby connection, handshake done, to a gateway of another silo
/// (opened as soon as the cluster reports one, but not within a second of losing a gateway: not in a failover's
/// stall). When
/// the gateway goes away, calls waiting on it fail at once (their outcome is unknown) and the standby takes over, so
/// the calls that follow (a session's client resuming it elsewhere) need no new connection and handshake first; a new
/// standby is then opened. Without a live standby the client reconnects to another gateway; calls made meanwhile wait
/// for it.
/// </summary>
internal sealed partial class GatewayClientTransport : IClientTransport, IConnectionOwner
{
    /// <summary>How long after losing a gateway (its active one or its standby) a client waits to open a standby connection.</summary>
    private static readonly TimeSpan StandbyDelay = TimeSpan.FromSeconds(1);

    private readonly ClusterOptions _cluster;
    private readonly ConnectionOptions _options;
    private readonly ILogger _logger;
    private readonly byte[] _secret;
    private readonly Dataplane.NodeDataplane? _dataplane;
    private readonly PeerBeacons _beacons;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource<ClusterManifest> _manifest = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The silo each gateway endpoint answered for, so that a standby is never opened to the active silo under another address.</summary>
    private readonly Dictionary<IPEndPoint, string> _siloAt = [];
    private bool _standbyScheduled;

    /// <summary>When the client last lost a gateway connection (<see cref="TimeProvider.GetTimestamp"/>; null: never).</summary>
    private long? _lostAt;
    private List<IPEndPoint> _gateways;
    private IClientTransportHandler? _handler;
    private Task<Connection>? _connection;

    /// <summary>A connection to a gateway of another silo than <see cref="_connection"/>'s, carrying nothing until it takes over.</summary>
    private Task<Connection>? _standby;

    public GatewayClientTransport(
        IReadOnlyList<IPEndPoint> gateways, ClusterOptions cluster, ConnectionOptions options, TimeProvider time, ILogger<GatewayClientTransport> logger,
        Dataplane.NodeDataplane? dataplane = null)
    {
        _dataplane = dataplane;
        if (gateways.Count == 0)
        {
            throw new InvalidOperationException("The client has no gateway to connect to: configure at least one (Lifl:Client:Gateways).");
        }

        _gateways = [.. gateways];
        _cluster = cluster;
        _options = options;
        Time = time;
        _logger = logger;
        _secret = Handshake.SecretBytes(cluster.Secret
            ?? throw new InvalidOperationException("ClusterOptions.Secret must be set for a client connecting over TCP (Lifl:Cluster:Secret)."));
        _beacons = new PeerBeacons(options.BeaconDirectory, OnGatewayDied, time, logger);
    }

    public TimeProvider Time { get; }

    public SerializerSession Session => _handler?.Session ?? new SerializerSession(null);

    public bool CompleteCallsAsynchronously => true;

    /// <summary>The gateway this client is connected to now (null while reconnecting).</summary>
    public string? CurrentGateway => _connection is var connection && IsOpen(connection) ? connection.Result.Peer.Id : null;

    public async Task<ClusterManifest> ConnectAsync(IClientTransportHandler handler, CancellationToken cancellationToken)
    {
        _handler = handler;
        await GetConnectionAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        return await _manifest.Task.WaitAsync(_options.HandshakeTimeout, cancellationToken).ConfigureAwait(false);
    }

    public void Send(RequestBase request)
    {
        var connecting = GetConnectionAsync();
        if (connecting.IsCompletedSuccessfully && connecting.Result.TrySendRequest(request))
        {
            return;
        }

        _ = SendWhenConnectedAsync(request);
    }

    private async Task SendWhenConnectedAsync(RequestBase request)
    {
        var patience = request.DeadlineTimestamp == 0
            ? _options.ConnectTimeout
            : Messaging.CallTimeouts.ToTimeSpan(Time, request.DeadlineTimestamp - Time.GetTimestamp());
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                var connection = await GetConnectionAsync().WaitAsync(patience > TimeSpan.Zero ? patience : TimeSpan.FromMilliseconds(1)).ConfigureAwait(false);
                if (connection.TrySendRequest(request))
                {
                    return;
                }
            }
            catch (Exception error) when (error is SiloUnavailableException or TimeoutException)
            {
                request.Fail(new RuntimeUnavailableException($"No gateway of {_cluster} is reachable for {request}: {error.Message}"));
                return;
            }
        }

        request.Fail(new RuntimeUnavailableException($"The gateway connections kept closing; {request} was not sent."));
    }

    private Task<Connection> GetConnectionAsync()
    {
        lock (_lock)
        {
            if (IsOpenOrOpening(_connection))
            {
                return _connection;
            }

            if (_closing.IsCancellationRequested)
            {
                return Task.FromException<Connection>(new RuntimeUnavailableException("The cluster client is closed."));
            }

            // The standby takes over (still connecting, it is waited for rather than raced by a second connection to
            // what may be the same silo, which would make the silo close one of them); without one, any gateway will do.
            var standby = _standby;
            _standby = null;
            _connection = IsOpenOrOpening(standby)
                ? TakeOverAsync(standby)
                : ConnectToAnyGatewayAsync(avoidSilo: null);
            return _connection;
        }
    }

    private async Task<Connection> TakeOverAsync(Task<Connection> standby)
    {
        await ((Task)standby).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!IsOpen(standby))
        {
            return await ConnectToAnyGatewayAsync(avoidSilo: null).ConfigureAwait(false);
        }

        LogStandbyTookOver(_logger, standby.Result.Peer.Id);
        return Activate(standby.Result);
    }

    /// <summary>The client's calls (and its observers' callers) go through <paramref name="connection"/> from now on; a standby for it is opened soon.</summary>
    private Connection Activate(Connection connection)
    {
        _handler!.OnObserverHostChanged($"client:{_handler.ClientId}@{connection.Peer.Id}");
        lock (_lock)
        {
            OpenStandbySoonLocked();
        }

        return connection;
    }

    /// <summary>
    /// Opens a standby connection once the active one is made (unless one is open or opening then), but not within
    /// <see cref="StandbyDelay"/> of losing a gateway: a connection lost means the cluster is busy with a failure, and
    /// the standby's connect and handshake would compete with the failover (a session resuming, an expert call
    /// replayed) on the silos and in this process. A client that just started is ready for a failure at once.
    /// </summary>
    private void OpenStandbySoonLocked()
    {
        if (_standbyScheduled || _closing.IsCancellationRequested)
        {
            return;
        }

        _standbyScheduled = true;
        var wait = _lostAt is { } lost ? StandbyDelay - Time.GetElapsedTime(lost) : TimeSpan.Zero;
        _ = OpenStandbyAfterDelayAsync(wait, _connection);
    }

    private async Task OpenStandbyAfterDelayAsync(TimeSpan wait, Task<Connection>? connecting)
    {
        try
        {
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, Time, _closing.Token).ConfigureAwait(false);
            }
            else if (connecting is not null)
            {
                // Scheduled while the active connection is being made (its handshake just done): it is the one to stand by for.
                await ((Task)connecting).WaitAsync(_closing.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        catch (OperationCanceledException)
        {
            return;
        }

        lock (_lock)
        {
            // Without an active connection there is nothing to stand by for: the one made next schedules it.
            _standbyScheduled = false;
            if (IsOpen(_connection))
            {
                OpenStandbyLocked(_connection.Result.Peer.Id);
            }
        }
    }

    /// <summary>Opens a standby connection unless one is open or opening, avoiding <paramref name="activeSilo"/>.</summary>
    private void OpenStandbyLocked(string activeSilo)
    {
        if (_closing.IsCancellationRequested || IsOpenOrOpening(_standby)
            || !_gateways.Any(g => _siloAt.GetValueOrDefault(g) != activeSilo))
        {
            return;
        }

        // No gateway of another silo answering is not an error: the next cluster view, or the next connection, tries again.
        _standby = ConnectToAnyGatewayAsync(activeSilo);
        ObserveFailure(_standby);
    }

    /// <summary>Whether <paramref name="connection"/> finished its handshake and is still open.</summary>
    private static bool IsOpen([NotNullWhen(true)] Task<Connection>? connection) => connection is { IsCompletedSuccessfully: true, Result.IsOpen: true };

    /// <summary>Whether <paramref name="connection"/> is open, or still connecting (its outcome not known yet).</summary>
    private static bool IsOpenOrOpening([NotNullWhen(true)] Task<Connection>? connection) => connection is { IsCompleted: false } || IsOpen(connection);

    /// <summary>A connect nobody awaits: its failure is seen again, and retried, by whatever needs a connection next.</summary>
    private static void ObserveFailure(Task<Connection> connecting) =>
        connecting.ContinueWith(
            static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>
    /// Connects to one of the gateways, in random order: the client's active gateway (and, once connected, its standby
    /// is opened), or with <paramref name="avoidSilo"/> a standby to a gateway of another silo than that one.
    /// </summary>
    private async Task<Connection> ConnectToAnyGatewayAsync(string? avoidSilo)
    {
        List<IPEndPoint> candidates;
        lock (_lock)
        {
            candidates = [.. _gateways.Where(g => avoidSilo is null || _siloAt.GetValueOrDefault(g) != avoidSilo).OrderBy(_ => Random.Shared.Next())];
        }

        var self = new PeerIdentity(PeerRole.Client, _handler!.ClientId, _dataplane?.Endpoint);
        var failures = new List<string>();
        foreach (var gateway in candidates)
        {
            try
            {
                var connection = await TcpConnector.ConnectAsync(gateway, _cluster.ClusterId, _secret, self, this, _options, _logger, _closing.Token).ConfigureAwait(false);
                lock (_lock)
                {
                    _siloAt[gateway] = connection.Peer.Id;
                }

                _beacons.Watch(connection.Peer.Id);

                if (avoidSilo is not null)
                {
                    LogStandbyConnected(_logger, gateway, connection.Peer.Id);
                    return connection;
                }

                LogConnected(_logger, gateway, connection.Peer.Id);
                return Activate(connection);
            }
            catch (SiloUnavailableException error)
            {
                failures.Add(error.Message);
            }
        }

        throw new SiloUnavailableException($"No gateway{(avoidSilo is null ? "" : $" of another silo than {avoidSilo}")} answered: {string.Join("; ", failures)}");
    }

    // A client on a gateway's node hands buffers over by descriptor; elsewhere they are streamed into its pool.
    Dataplane.IFrameBufferChannel? IConnectionOwner.CreateBufferChannel(PeerIdentity peer) => _dataplane?.CreateChannel(peer);

    void IConnectionOwner.OnRequest(Connection connection, RequestBase request)
    {
        if (_handler?.DeliverToObserver(request) != true)
        {
            request.Fail(new ObserverNotFoundException($"Observer {request.TargetId} does not exist on client {_handler?.ClientId}."));
        }
    }

    void IConnectionOwner.OnControlFrame(Connection connection, FrameKind kind, ref Reader payload)
    {
        switch (kind)
        {
            case FrameKind.Manifest:
                _manifest.TrySetResult(Codec<ClusterManifest>.ReadField(ref payload));
                break;
            case FrameKind.ClusterView:
                var gateways = Codec<List<string>>.ReadField(ref payload)
                    .Select(g => IPEndPoint.TryParse(g, out var endpoint) ? endpoint : null)
                    .OfType<IPEndPoint>()
                    .ToList();
                if (gateways.Count > 0)
                {
                    lock (_lock)
                    {
                        _gateways = gateways;
                        OpenStandbySoonLocked();
                    }
                }

                break;
            default:
                throw new ProtocolException($"a {kind} frame is not expected by a client");
        }
    }

    void IConnectionOwner.OnClosed(Connection connection, Exception reason)
    {
        if (!_closing.IsCancellationRequested)
        {
            lock (_lock)
            {
                // Either way a gateway went: the next standby waits StandbyDelay from now.
                _lostAt = Time.GetTimestamp();
                if (_standby is { IsCompletedSuccessfully: true } standby && standby.Result == connection)
                {
                    // The standby's silo went: open another while the active gateway serves on.
                    _standby = null;
                    LogStandbyLost(_logger, connection.Peer.Id, reason.Message);
                    OpenStandbySoonLocked();

                    return;
                }
            }

            LogGatewayLost(_logger, connection.Peer.Id, reason.Message);

            // Take the standby or reconnect now rather than at the next call: the callers that just lost their calls are
            // about to call again (a session's client, to resume it elsewhere), and their continuations may run only
            // milliseconds later.
            ObserveFailure(GetConnectionAsync());
        }
    }

    /// <summary>A gateway's silo on this node died (its beacon says so): its connection closes now, as if it had ended.</summary>
    private void OnGatewayDied(string silo)
    {
        Task<Connection>?[] connections;
        lock (_lock)
        {
            connections = [_connection, _standby];
        }

        var reason = new ConnectionClosedException("its process died");
        foreach (var connection in connections)
        {
            if (connection is { IsCompletedSuccessfully: true } done && done.Result.Peer.Id == silo)
            {
                done.Result.Close(reason);
            }
        }
    }

    public void FailExpiredCalls(long now)
    {
        if (_connection is { IsCompletedSuccessfully: true } done)
        {
            done.Result.FailExpiredCalls(now);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _beacons.Dispose();
        await _closing.CancelAsync().ConfigureAwait(false);
        Task<Connection>?[] connections;
        lock (_lock)
        {
            connections = [_connection, _standby];
        }

        foreach (var connection in connections.OfType<Task<Connection>>())
        {
            // A connect under way (a reconnect starts as soon as a gateway is lost, a standby once a gateway answers) is
            // cancelled by the closing token; one that finished its handshake just before is closed here rather than left open.
            await ((Task)connection).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (connection.IsCompletedSuccessfully)
            {
                connection.Result.Close(new ConnectionClosedException("the client closed"));
            }
        }
    }

    [LoggerMessage(EventId = 5201, Level = LogLevel.Information, Message = "Connected to gateway {Gateway} ({Silo})")]
    private static partial void LogConnected(ILogger logger, IPEndPoint gateway, string silo);

    [LoggerMessage(EventId = 5202, Level = LogLevel.Warning, Message = "Lost gateway {Silo} ({Reason}); going on through the standby or another gateway")]
    private static partial void LogGatewayLost(ILogger logger, string silo, string reason);

    [LoggerMessage(EventId = 5203, Level = LogLevel.Debug, Message = "Standby connection to gateway {Gateway} ({Silo}) open")]
    private static partial void LogStandbyConnected(ILogger logger, IPEndPoint gateway, string silo);

    [LoggerMessage(EventId = 5204, Level = LogLevel.Information, Message = "The standby connection to {Silo} took over as the client's gateway")]
    private static partial void LogStandbyTookOver(ILogger logger, string silo);

    [LoggerMessage(EventId = 5205, Level = LogLevel.Information, Message = "Lost the standby gateway {Silo} ({Reason}); opening another")]
    private static partial void LogStandbyLost(ILogger logger, string silo, string reason);
}
