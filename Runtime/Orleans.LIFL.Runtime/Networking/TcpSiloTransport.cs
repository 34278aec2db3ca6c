using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Runtime.Messaging;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Networking;

/// <summary>What the transport hands to the silo: calls to route, and membership gossip.</summary>
internal interface ISiloTransportHandler
{
    bool ReceiveFromSilo(RequestBase request);

    void ReceiveFromClient(RequestBase request);

    /// <summary>A request handed to the transport could not be delivered: the silo could not be connected to.</summary>
    void OnUndeliverable(RequestBase request, SiloAddress silo);

    void OnMembershipGossip();

    SiloRuntimeStatistics CurrentStatistics();

    ClusterManifest Manifest { get; }

    /// <summary>The gateway endpoints of the active silos, for clients to fail over to.</summary>
    IReadOnlyList<string> GatewayEndpoints();
}

/// <summary>
/// A silo's network: it listens for silos and for clients (authenticated handshake on every connection), keeps one
/// outgoing connection per peer silo (reconnecting, with a short back-off after a failed attempt), and answers pings
/// with its load figures, which placement reads.
/// </summary>
internal sealed partial class TcpSiloTransport : IClusterTransport, IConnectionOwner, IAsyncDisposable
{
    private static readonly TimeSpan ReconnectBackoff = TimeSpan.FromMilliseconds(500);
    private readonly ClusterOptions _cluster;
    private readonly ConnectionOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly byte[] _secret;
    private readonly Socket _siloListener;
    private readonly Socket? _gatewayListener;
    private readonly ConcurrentDictionary<SiloAddress, SiloLink> _links = new();
    private readonly ConcurrentDictionary<string, Connection> _clients = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Connection, byte> _incoming = new();
    private readonly ConcurrentDictionary<SiloAddress, SiloRuntimeStatistics> _statistics = new();
    private readonly ConcurrentDictionary<long, TaskCompletionSource<SiloRuntimeStatistics>> _pings = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dataplane.NodeDataplane? _dataplane;
    private readonly PeerBeacons _beacons;
    private Orleans.LIFL.Dataplane.ProcessBeacon? _beacon;
    private ISiloTransportHandler? _handler;
    private long _nextPing;
    private long _acceptedClientConnections;

    public TcpSiloTransport(EndpointOptions endpoints, ClusterOptions cluster, ConnectionOptions options, TimeProvider time, ILoggerFactory loggerFactory,
        Dataplane.NodeDataplane? dataplane = null)
    {
        _cluster = cluster;
        _dataplane = dataplane;
        _options = options;
        Time = time;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<TcpSiloTransport>();
        _secret = Handshake.SecretBytes(cluster.Secret
            ?? throw new InvalidOperationException("ClusterOptions.Secret must be set when silos talk over TCP (Lifl:Cluster:Secret, or --secret)."));

        var listen = IPAddress.Parse(endpoints.ListenAddress);
        var advertised = endpoints.AdvertisedAddress is { } a ? IPAddress.Parse(a) : listen.Equals(IPAddress.Any) ? IPAddress.Loopback : listen;
        _siloListener = Listen(new IPEndPoint(listen, endpoints.SiloPort));
        Address = new SiloAddress(new IPEndPoint(advertised, ((IPEndPoint)_siloListener.LocalEndPoint!).Port), SiloAddress.NewGeneration());
        if (endpoints.GatewayPort >= 0)
        {
            _gatewayListener = Listen(new IPEndPoint(listen, endpoints.GatewayPort));
            GatewayEndpoint = new IPEndPoint(advertised, ((IPEndPoint)_gatewayListener.LocalEndPoint!).Port);
        }

        _beacons = new PeerBeacons(options.BeaconDirectory, OnPeerDied, time, _logger);
    }

    public SiloAddress Address { get; }

    /// <summary>Where clients connect; null when this silo is not a gateway.</summary>
    public IPEndPoint? GatewayEndpoint { get; }

    public TimeProvider Time { get; }

    public SerializerSession Session { get; private set; } = new(null);

    public bool CompleteCallsAsynchronously => false;

    public int ConnectedClients => _clients.Count;

    /// <summary>Client connections accepted since the start (each one a handshake).</summary>
    public long AcceptedClientConnections => Interlocked.Read(ref _acceptedClientConnections);

    public void Start(ISiloTransportHandler handler, IGrainCallRuntime runtime)
    {
        _handler = handler;
        Session = new SerializerSession(runtime);

        // Connections to and from this port between silos of the node skip the TCP/IP stack when eBPF can be had.
        _dataplane?.RegisterSiloPort(Address.Endpoint.Port);
        _beacon = _beacons.Light(Address.ToString());
        _ = AcceptLoopAsync(_siloListener, PeerRole.Silo);
        if (_gatewayListener is not null)
        {
            _ = AcceptLoopAsync(_gatewayListener, PeerRole.Client);
        }
    }

    private static Socket Listen(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Bind(endpoint);
            socket.Listen(512);
            return socket;
        }
        catch (SocketException error)
        {
            socket.Dispose();
            throw new InvalidOperationException($"Cannot listen on {endpoint}: {error.Message}", error);
        }
    }

    private async Task AcceptLoopAsync(Socket listener, PeerRole role)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception error) when (error is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = AcceptAsync(socket, role);
        }
    }

    private async Task AcceptAsync(Socket socket, PeerRole role)
    {
        socket.NoDelay = true;
        var stream = new NetworkStream(socket, ownsSocket: true);
        var input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024));
        PeerIdentity peer;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            timeout.CancelAfter(_options.HandshakeTimeout);
            peer = await Handshake.RespondAsync(
                stream, input, _cluster.ClusterId, _secret, Address.ToString(), r => r == role, timeout.Token, _dataplane?.Endpoint).ConfigureAwait(false);
        }
        catch (Exception error)
        {
            LogHandshakeRefused(_logger, role, socket.RemoteEndPoint?.ToString() ?? "?", error.Message);
            socket.Dispose();
            return;
        }

        var connection = new Connection(socket, stream, input, peer, this, _options, _logger);
        _incoming[connection] = 0;
        if (peer.Role == PeerRole.Client)
        {
            if (_clients.TryGetValue(peer.Id, out var previous))
            {
                previous.Close(new ConnectionClosedException("the client reconnected"));
            }

            _clients[peer.Id] = connection;
            Interlocked.Increment(ref _acceptedClientConnections);
        }

        connection.Start();
        if (peer.Role == PeerRole.Client)
        {
            SendManifest(connection);
            SendClusterView(connection);
        }
        else
        {
            _beacons.Watch(peer.Id);
        }
    }

    public bool TrySendToSilo(SiloAddress silo, RequestBase request)
    {
        var link = _links.GetOrAdd(silo, static (s, transport) => new SiloLink(s, transport), this);
        return link.TrySend(request);
    }

    public bool TrySendToClient(string clientId, RequestBase request) =>
        _clients.TryGetValue(clientId, out var connection) && connection.TrySendRequest(request);

    public bool ProcessJustDied(SiloAddress silo) => _beacons.DiedWithin(silo.ToString(), TimeSpan.FromSeconds(1));

    public SiloRuntimeStatistics? GetStatistics(SiloAddress silo) =>
        silo.Equals(Address) ? _handler?.CurrentStatistics() : _statistics.GetValueOrDefault(silo);

    /// <summary>Pings a silo over this silo's connection to it; null when it does not answer in time.</summary>
    public async Task<SiloRuntimeStatistics?> PingAsync(SiloAddress silo, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var link = _links.GetOrAdd(silo, static (s, transport) => new SiloLink(s, transport), this);
        Connection connection;
        try
        {
            connection = await link.GetConnectionAsync().WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception error) when (error is TimeoutException or SiloUnavailableException or OperationCanceledException)
        {
            return null;
        }

        var sequence = Interlocked.Increment(ref _nextPing);
        var pong = new TaskCompletionSource<SiloRuntimeStatistics>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pings[sequence] = pong;
        try
        {
            if (!connection.TrySendControl(FrameKind.Ping, sequence, static (ref Writer w, long s) => w.WriteVarUInt64((ulong)s)))
            {
                return null;
            }

            var statistics = await pong.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
            _statistics[silo] = statistics;
            return statistics;
        }
        catch (Exception error) when (error is TimeoutException or OperationCanceledException)
        {
            return null;
        }
        finally
        {
            _pings.TryRemove(sequence, out _);
        }
    }

    /// <summary>
    /// Whether <paramref name="silo"/> sent a whole frame on this silo's connection to it after
    /// <paramref name="timestamp"/>: a probe answer stuck behind large messages still leaves that trace of a live peer.
    /// </summary>
    public bool HeardFromSince(SiloAddress silo, long timestamp) =>
        _links.TryGetValue(silo, out var link) && link.Current is { IsOpen: true } connection && connection.LastFrameTimestamp > timestamp;

    /// <summary>Tells the given silos (connecting to them if needed) to re-read the membership table now.</summary>
    public void BroadcastMembershipChanged(IEnumerable<SiloAddress> silos)
    {
        foreach (var silo in silos)
        {
            if (!silo.Equals(Address))
            {
                _links.GetOrAdd(silo, static (s, transport) => new SiloLink(s, transport), this).SendControlWhenConnected(FrameKind.MembershipChanged);
            }
        }
    }

    /// <summary>Sends the current gateway list to every connected client.</summary>
    public void PublishClusterView()
    {
        foreach (var client in _clients.Values)
        {
            SendClusterView(client);
        }
    }

    /// <summary>
    /// A silo of this node died (its beacon says so): its connections close now, failing the calls on them, and sends
    /// to it fail at once for a while (a reconnect would reach its listening socket, which outlives it by milliseconds)
    /// rather than wait on a handshake it will never answer. Membership still declares it dead in its own time.
    /// </summary>
    private void OnPeerDied(string silo)
    {
        var reason = new ConnectionClosedException("its process died");
        if (_links.TryGetValue(SiloAddress.Parse(silo), out var link))
        {
            link.PeerDied(reason);
        }

        CloseConnectionsFrom(silo, reason);
    }

    /// <summary>Closes the connections <paramref name="silo"/> opened to this one.</summary>
    private void CloseConnectionsFrom(string silo, Exception reason)
    {
        foreach (var connection in _incoming.Keys)
        {
            if (connection.Peer.Role == PeerRole.Silo && connection.Peer.Id == silo)
            {
                connection.Close(reason);
            }
        }
    }

    /// <summary>Forgets a silo that left or died: drops the connection and everything waiting on it.</summary>
    public void ForgetSilo(SiloAddress silo, Exception reason)
    {
        if (_links.TryRemove(silo, out var link))
        {
            link.Close(reason);
        }

        _statistics.TryRemove(silo, out _);
        CloseConnectionsFrom(silo.ToString(), reason);
    }

    public void FailExpiredCalls(long now)
    {
        foreach (var link in _links.Values)
        {
            link.FailExpiredCalls(now);
        }

        foreach (var connection in _incoming.Keys)
        {
            connection.FailExpiredCalls(now);
        }
    }

    Dataplane.IFrameBufferChannel? IConnectionOwner.CreateBufferChannel(PeerIdentity peer) => _dataplane?.CreateChannel(peer);

    void IConnectionOwner.OnRequest(Connection connection, RequestBase request)
    {
        var handler = _handler!;
        if (connection.Peer.Role == PeerRole.Client)
        {
            handler.ReceiveFromClient(request);
        }
        else if (!handler.ReceiveFromSilo(request))
        {
            request.Fail(new SiloUnavailableException($"Silo {Address} is shutting down; it cannot take {request}."));
        }
    }

    void IConnectionOwner.OnControlFrame(Connection connection, FrameKind kind, ref Reader payload)
    {
        switch (kind)
        {
            case FrameKind.Ping:
                var sequence = (long)payload.ReadVarUInt64();
                var statistics = _handler!.CurrentStatistics();
                connection.TrySendControl(FrameKind.Pong, (sequence, statistics), static (ref Writer w, (long Sequence, SiloRuntimeStatistics Statistics) s) =>
                {
                    w.WriteVarUInt64((ulong)s.Sequence);
                    StatisticsWire.Write(ref w, s.Statistics);
                });
                break;
            case FrameKind.Pong:
                var answered = (long)payload.ReadVarUInt64();
                var figures = StatisticsWire.Read(ref payload);
                if (_pings.TryGetValue(answered, out var waiter))
                {
                    waiter.TrySetResult(figures);
                }

                break;
            case FrameKind.MembershipChanged:
                _handler!.OnMembershipGossip();
                break;
            default:
                throw new ProtocolException($"a {kind} frame is not expected from a {connection.Peer.Role}");
        }
    }

    void IConnectionOwner.OnClosed(Connection connection, Exception reason)
    {
        _incoming.TryRemove(connection, out _);
        if (connection.Peer.Role == PeerRole.Client && _clients.TryGetValue(connection.Peer.Id, out var current) && ReferenceEquals(current, connection))
        {
            _clients.TryRemove(connection.Peer.Id, out _);
            LogClientLeft(_logger, connection.Peer.Id, reason.Message);
        }
    }

    private void SendManifest(Connection connection) =>
        connection.TrySendControl(FrameKind.Manifest, _handler!.Manifest, static (ref Writer w, ClusterManifest m) => Codec<ClusterManifest>.WriteField(ref w, 0, m));

    private void SendClusterView(Connection connection) =>
        connection.TrySendControl(FrameKind.ClusterView, _handler!.GatewayEndpoints(), static (ref Writer w, IReadOnlyList<string> gateways) =>
            Codec<List<string>>.WriteField(ref w, 0, [.. gateways]));

    private async Task<Connection> ConnectAsync(SiloAddress silo)
    {
        Connection connection;
        try
        {
            connection = await TcpConnector.ConnectAsync(
                silo.Endpoint, _cluster.ClusterId, _secret, new PeerIdentity(PeerRole.Silo, Address.ToString(), _dataplane?.Endpoint), this, _options, _logger, _stopping.Token)
                .ConfigureAwait(false);
        }
        catch (SiloUnavailableException error)
        {
            throw new SiloUnavailableException($"Silo {silo} is unreachable: {error.Message}");
        }

        if (connection.Peer.Id != silo.ToString())
        {
            // The endpoint now belongs to another incarnation: the silo we wanted is gone.
            connection.Close(new ConnectionClosedException("wrong silo incarnation"));
            throw new SiloUnavailableException($"{silo.Endpoint} is now {connection.Peer.Id}, not {silo}.");
        }

        _beacons.Watch(connection.Peer.Id);
        return connection;
    }

    public async ValueTask DisposeAsync()
    {
        // Put out first: this silo stops, it does not die, and its peers hear of it through membership.
        _beacon?.Dispose();
        _beacons.Dispose();
        await _stopping.CancelAsync().ConfigureAwait(false);
        _siloListener.Dispose();
        _gatewayListener?.Dispose();
        var reason = new ConnectionClosedException("this silo stopped");
        foreach (var link in _links.Values)
        {
            link.Close(reason);
        }

        foreach (var connection in _incoming.Keys)
        {
            connection.Close(reason);
        }
    }

    [LoggerMessage(EventId = 5101, Level = LogLevel.Warning, Message = "Refused a {Role} connection from {Remote}: {Reason}")]
    private static partial void LogHandshakeRefused(ILogger logger, PeerRole role, string remote, string reason);

    [LoggerMessage(EventId = 5102, Level = LogLevel.Information, Message = "Client {Client} disconnected ({Reason})")]
    private static partial void LogClientLeft(ILogger logger, string client, string reason);

    /// <summary>The outgoing connection to one peer silo, connected on demand.</summary>
    private sealed class SiloLink(SiloAddress silo, TcpSiloTransport transport)
    {
        private readonly Lock _lock = new();
        private Task<Connection>? _connecting;
        private long _failedAt;
        private Exception? _failure;

        /// <summary>The open connection, if there is one now.</summary>
        public Connection? Current
        {
            get
            {
                lock (_lock)
                {
                    return _connecting is { IsCompletedSuccessfully: true } done ? done.Result : null;
                }
            }
        }

        public Task<Connection> GetConnectionAsync()
        {
            lock (_lock)
            {
                if (_connecting is { IsCompletedSuccessfully: true } done && done.Result.IsOpen)
                {
                    return done;
                }

                if (_failure is not null && transport.Time.GetElapsedTime(_failedAt) < ReconnectBackoff)
                {
                    return Task.FromException<Connection>(_failure);
                }

                if (_connecting is null || _connecting.IsCompleted)
                {
                    _connecting = ConnectAsync();
                }

                return _connecting;
            }
        }

        private async Task<Connection> ConnectAsync()
        {
            try
            {
                var connection = await transport.ConnectAsync(silo).ConfigureAwait(false);
                lock (_lock)
                {
                    _failure = null;
                }

                return connection;
            }
            catch (SiloUnavailableException error)
            {
                lock (_lock)
                {
                    _failure = error;
                    _failedAt = transport.Time.GetTimestamp();
                }

                throw;
            }
        }

        public bool TrySend(RequestBase request)
        {
            var connecting = GetConnectionAsync();
            if (connecting.IsCompletedSuccessfully)
            {
                return connecting.Result.TrySendRequest(request) || Retry(request);
            }

            if (connecting.IsFaulted)
            {
                return false;
            }

            // Not connected yet: send once the handshake completes; if it does not, the request was never sent.
            connecting.ContinueWith(
                static (task, state) =>
                {
                    var (request, link) = ((RequestBase, SiloLink))state!;
                    if (!task.IsCompletedSuccessfully || !task.Result.TrySendRequest(request))
                    {
                        link.OnUndeliverable(request);
                    }
                },
                (request, this),
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
            return true;
        }

        private void OnUndeliverable(RequestBase request) => transport._handler!.OnUndeliverable(request, silo);

        private bool Retry(RequestBase request)
        {
            // The connection closed between the check and the send: one fresh attempt.
            var connecting = GetConnectionAsync();
            return connecting.IsCompletedSuccessfully && connecting.Result.TrySendRequest(request);
        }

        public void SendControlWhenConnected(FrameKind kind) =>
            GetConnectionAsync().ContinueWith(
                static (task, state) =>
                {
                    if (task.IsCompletedSuccessfully)
                    {
                        task.Result.TrySendControl((FrameKind)state!, 0, static (ref Writer w, int _) => w.WriteEndTag());
                    }
                },
                kind,
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);

        public void FailExpiredCalls(long now)
        {
            if (_connecting is { IsCompletedSuccessfully: true } done)
            {
                done.Result.FailExpiredCalls(now);
            }
        }

        public void Close(Exception reason)
        {
            if (_connecting is { IsCompletedSuccessfully: true } done)
            {
                done.Result.Close(reason);
            }
        }

        /// <summary>The peer's process died: closes the connection, and refuses sends for the reconnect back-off.</summary>
        public void PeerDied(Exception reason)
        {
            lock (_lock)
            {
                _failure = new SiloUnavailableException($"Silo {silo} is unreachable: {reason.Message}.");
                _failedAt = transport.Time.GetTimestamp();
            }

            Close(reason);
        }
    }
}

/// <summary>A silo's load figures as they travel in pongs.</summary>
internal static class StatisticsWire
{
    public static void Write(ref Writer writer, SiloRuntimeStatistics statistics)
    {
        writer.WriteVarUInt32((uint)statistics.ActivationCount);
        writer.WriteFixed64(BitConverter.DoubleToUInt64Bits(statistics.CpuUsagePercent));
        writer.WriteVarUInt64((ulong)statistics.MemoryUsageBytes);
        writer.WriteVarUInt64((ulong)statistics.AvailableMemoryBytes);
        writer.WriteVarUInt32((uint)statistics.ProcessorCount);
        Codec<string>.WriteField(ref writer, 0, statistics.NodeId);
        writer.WriteFixed64(BitConverter.DoubleToUInt64Bits(statistics.CpuSeconds));
        writer.WriteVarUInt64((ulong)statistics.PeakMemoryBytes);
    }

    public static SiloRuntimeStatistics Read(ref Reader reader) => new(
        (int)Math.Min(reader.ReadVarUInt32(), int.MaxValue),
        BitConverter.UInt64BitsToDouble(reader.ReadFixed64()),
        (long)Math.Min(reader.ReadVarUInt64(), long.MaxValue),
        (long)Math.Min(reader.ReadVarUInt64(), long.MaxValue),
        DateTime.UtcNow,
        (int)Math.Min(reader.ReadVarUInt32(), 4096),
        Codec<string>.ReadField(ref reader) ?? "",
        BitConverter.UInt64BitsToDouble(reader.ReadFixed64()),
        (long)Math.Min(reader.ReadVarUInt64(), long.MaxValue));
}
