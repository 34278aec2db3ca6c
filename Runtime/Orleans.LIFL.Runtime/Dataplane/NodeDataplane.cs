using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Runtime.Networking;

namespace Orleans.LIFL.Runtime.Dataplane;

/// <summary>
/// This process's part of the node's dataplane: the shared pool it maps (opened on first use), its place there as
/// announced to peers, the eBPF redirection of its silo port, and the periodic reclaiming of the buffers of
/// processes that died. Anything that cannot be had here is said once in the log, and links fall back (buffers
/// cannot cross them; TCP instead of eBPF).
/// </summary>
internal sealed partial class NodeDataplane : INodeDataplane, IDisposable
{
    private readonly DataplaneOptions _options;
    private readonly ClusterOptions _cluster;
    private readonly ILogger _logger;
    private readonly Lazy<SharedBufferPool?> _pool;
    private readonly object _gate = new();
    private readonly Lazy<TransferAdmission> _admission;
    private readonly List<int> _redirectedPorts = [];
    private EbpfRedirect? _ebpf;
    private bool _ebpfTried;
    private Timer? _recovery;

    public NodeDataplane(IOptions<DataplaneOptions> options, IOptions<ClusterOptions> cluster, ILogger<NodeDataplane> logger)
    {
        _options = options.Value;
        _cluster = cluster.Value;
        _logger = logger;
        NodeId = _options.NodeId ?? DataplaneOptions.DefaultNodeId();
        PoolName = _options.PoolName ?? "lifl-" + Sanitize(_cluster.ClusterId);
        _pool = new Lazy<SharedBufferPool?>(OpenPool, LazyThreadSafetyMode.ExecutionAndPublication);
        _admission = new Lazy<TransferAdmission>(OpenAdmission, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public string NodeId { get; }

    public string PoolName { get; }

    /// <summary>The node's shared pool, or null when the dataplane is off or the pool could not be opened.</summary>
    public SharedBufferPool? Pool => _pool.Value;

    /// <summary>What this process announces in its handshakes.</summary>
    public DataplaneEndpoint? Endpoint => Pool is { } pool ? new DataplaneEndpoint(NodeId, PoolName, pool.Slot) : null;

    /// <summary>The eBPF redirection, once a silo port was registered and it could be loaded.</summary>
    public EbpfRedirect? Ebpf => Volatile.Read(ref _ebpf);

    public bool EbpfActive
    {
        get
        {
            lock (_gate)
            {
                return _ebpf is not null && _redirectedPorts.Count > 0;
            }
        }
    }

    public EbpfStatistics? GetEbpfStatistics()
    {
        lock (_gate)
        {
            return _ebpf?.GetStatistics();
        }
    }

    /// <summary>Why eBPF redirection is not in effect (null while it is, or before a silo port asked for it).</summary>
    public string? EbpfUnavailableReason { get; private set; }

    /// <summary>
    /// How buffers cross a link to <paramref name="peer"/>: by descriptor when it maps our pool, streamed when it has a
    /// pool elsewhere; not at all when either end has none.
    /// </summary>
    public IFrameBufferChannel? CreateChannel(PeerIdentity peer)
    {
        var self = Endpoint;
        if (self is null || peer.Dataplane is null)
        {
            return null;
        }

        return self.SharesPoolWith(peer.Dataplane) ? new DescriptorChannel(Pool!, peer.Dataplane.Slot) : new StreamingChannel(Pool!, _admission.Value, holdUntilAnswered: peer.Role == PeerRole.Client);
    }

    /// <summary>Asks for eBPF redirection of the connections to and from <paramref name="port"/> (a silo-to-silo listener).</summary>
    public void RegisterSiloPort(int port)
    {
        if (!_options.Enabled || !_options.Ebpf)
        {
            return;
        }

        lock (_gate)
        {
            if (!_ebpfTried)
            {
                _ebpfTried = true;
                var pinDirectory = _options.BpfPinDirectory ?? DataplaneOptions.DefaultBpfPinDirectory;
                if (EbpfRedirect.TryOpen(pinDirectory, _options.CgroupPath, out var redirect, out var error))
                {
                    _ebpf = redirect;
                    LogEbpfLoaded(_logger, pinDirectory);
                }
                else
                {
                    EbpfUnavailableReason = error;
                    LogEbpfUnavailable(_logger, error);
                }
            }

            if (_ebpf is null)
            {
                return;
            }

            try
            {
                _ebpf.AddPort(port);
                _redirectedPorts.Add(port);
            }
            catch (DataplaneException error)
            {
                EbpfUnavailableReason = error.Message;
                LogEbpfUnavailable(_logger, error.Message);
            }
        }
    }

    public void Dispose()
    {
        _recovery?.Dispose();
        lock (_gate)
        {
            // The programs stay pinned for the node's other silos; only this silo's ports leave the map. (A killed
            // silo's port stays: a later socket on it is redirected too, which changes its speed, not its bytes.)
            foreach (var port in _redirectedPorts)
            {
                try
                {
                    _ebpf?.RemovePort(port);
                }
                catch (DataplaneException error)
                {
                    LogEbpfUnavailable(_logger, error.Message);
                }
            }

            _redirectedPorts.Clear();
            _ebpf?.Dispose();
        }

        if (_admission.IsValueCreated)
        {
            _admission.Value.Dispose();
        }

        if (_pool.IsValueCreated)
        {
            _pool.Value?.Dispose();
        }
    }

    /// <summary>This process's limit on incoming streamed transfers (created with the first streaming link).</summary>
    internal TransferAdmission Admission => _admission.Value;

    /// <summary>
    /// The limit on incoming transfers, shared by the processes of the node that map the pool (its places are named
    /// after it); per process where the places cannot be had, as said once in the log.
    /// </summary>
    private const string PlacesSuffix = ".incoming";

    private TransferAdmission OpenAdmission()
    {
        var limit = _options.MaxIncomingTransfers ?? Math.Max(2, Environment.ProcessorCount);
        try
        {
            return new TransferAdmission(limit, new NodePlaces(PoolName + PlacesSuffix, limit));
        }
        catch (Exception error) when (error is DataplaneException or IOException or UnauthorizedAccessException)
        {
            LogNodeAdmissionUnavailable(_logger, limit, error.Message);
            return new TransferAdmission(limit);
        }
    }

    private SharedBufferPool? OpenPool()
    {
        if (!_options.Enabled)
        {
            return null;
        }

        try
        {
            // Shared by the process's silos and clients: one of them stopping never unmaps what the others read.
            var pool = SharedBufferPool.Acquire(PoolName, _options.PoolCapacity);
            LogPoolOpened(_logger, PoolName, pool.Slot, pool.Capacity >> 20, NodeId);
            RemoveOrphanedPlaces();
            _recovery = new Timer(_ => Recover(), null, _options.RecoveryPeriod, _options.RecoveryPeriod);
            return pool;
        }
        catch (Exception error) when (error is DataplaneException or DllNotFoundException or EntryPointNotFoundException)
        {
            LogPoolUnavailable(_logger, PoolName, error.Message);
            return null;
        }
    }

    /// <summary>
    /// Removes the admission places of pools that are gone (their processes were killed, or one still held a place
    /// when the last closed): with every process that maps a pool, not only those that stream.
    /// </summary>
    private void RemoveOrphanedPlaces()
    {
        try
        {
            NodePlaces.RemoveOrphans(name => name.EndsWith(PlacesSuffix, StringComparison.Ordinal)
                && !SharedBufferPool.Exists(name[..^PlacesSuffix.Length]));
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            LogPlacesSweepFailed(_logger, error.Message);
        }
    }

    private void Recover()
    {
        try
        {
            var freed = _pool.Value?.Recover() ?? 0;
            if (freed > 0)
            {
                LogRecovered(_logger, freed, PoolName);
            }
        }
        catch (Exception error) when (error is DataplaneException or ObjectDisposedException)
        {
            LogRecoveryFailed(_logger, error.Message);
        }
    }

    private static string Sanitize(string value) =>
        new(value.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_').Take(80).ToArray());

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "Shared pool {Pool} mapped (slot {Slot}, {CapacityMiB} MiB) on node {Node}")]
    private static partial void LogPoolOpened(ILogger logger, string pool, int slot, long capacityMiB, string node);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "Shared pool {Pool} is unavailable, shared buffers cannot cross this process's links: {Reason}")]
    private static partial void LogPoolUnavailable(ILogger logger, string pool, string reason);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Information, Message = "eBPF redirection between this node's silos is in effect (pinned under {PinDirectory})")]
    private static partial void LogEbpfLoaded(ILogger logger, string pinDirectory);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Warning, Message = "eBPF redirection is unavailable, silos of this node talk over loopback TCP: {Reason}")]
    private static partial void LogEbpfUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 6005, Level = LogLevel.Information, Message = "Reclaimed {Buffers} buffers of dead processes from shared pool {Pool}")]
    private static partial void LogRecovered(ILogger logger, long buffers, string pool);

    [LoggerMessage(EventId = 6006, Level = LogLevel.Warning, Message = "Reclaiming the buffers of dead processes failed: {Reason}")]
    private static partial void LogRecoveryFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 6007, Level = LogLevel.Warning, Message = "The limit of {Limit} incoming transfers holds for this process alone, not the node's: {Reason}")]
    private static partial void LogNodeAdmissionUnavailable(ILogger logger, int limit, string reason);

    [LoggerMessage(EventId = 6008, Level = LogLevel.Warning, Message = "Removing the admission places of pools that are gone failed: {Reason}")]
    private static partial void LogPlacesSweepFailed(ILogger logger, string reason);
}
