using Microsoft.Extensions.Logging;
using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Runtime.Networking;

/// <summary>
/// A transport's side of the node's process beacons (<see cref="ProcessBeacon"/>): a silo lights one under its address
/// for its life, and a silo or client watches the beacon of every silo it connects to, if that silo is on its node. When
/// a watched silo's process dies, <c>onDied</c> gets its address at once — before the kernel has taken the dead process's
/// memory down and closed its sockets, which on a busy node is 5-50 ms later — so that its connections are closed and
/// the calls on them fail over now. A silo on another node has no beacon here: its loss is heard as before, from its
/// connections and from membership.
/// </summary>
internal sealed partial class PeerBeacons : IDisposable
{
    private readonly string? _directory;
    private readonly Action<string> _onDied;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();

    /// <summary>The watch of each peer looked for (null: it has no beacon on this node).</summary>
    private readonly Dictionary<string, BeaconWatch?> _watches = new(StringComparer.Ordinal);

    /// <summary>When each peer's beacon was seen to die (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    private readonly Dictionary<string, long> _diedAt = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private bool _unavailable;
    private bool _disposed;

    /// <param name="directory">Where the node's beacons are (<see cref="Configuration.ConnectionOptions.BeaconDirectory"/>); null: none are used.</param>
    public PeerBeacons(string? directory, Action<string> onDied, TimeProvider time, ILogger logger)
    {
        _time = time;
        _directory = directory is not null && OperatingSystem.IsLinux() && Directory.Exists(directory) ? directory : null;
        _onDied = onDied;
        _logger = logger;
    }

    /// <summary>Lights this process's beacon for silo <paramref name="silo"/>; null when beacons are off or cannot be had here (logged).</summary>
    public ProcessBeacon? Light(string silo)
    {
        if (_directory is null)
        {
            return null;
        }

        try
        {
            return ProcessBeacon.Light(_directory, ProcessBeacon.NameOf(silo));
        }
        catch (Exception error) when (error is DataplaneException or DllNotFoundException or EntryPointNotFoundException or ArgumentException)
        {
            LogNoBeacon(_logger, silo, error.Message);
            return null;
        }
    }

    /// <summary>Watches silo <paramref name="silo"/>'s beacon unless it is watched already or known to have none here.</summary>
    public void Watch(string silo)
    {
        if (_directory is null)
        {
            return;
        }

        lock (_lock)
        {
            if (_disposed || _unavailable || _watches.ContainsKey(silo))
            {
                return;
            }

            BeaconWatch? watch;
            try
            {
                watch = BeaconWatch.Open(_directory, ProcessBeacon.NameOf(silo), () => OnDied(silo));
            }
            catch (Exception error) when (error is DllNotFoundException or EntryPointNotFoundException)
            {
                // The process has no liflnative: none of the node's beacons can be watched from here.
                _unavailable = true;
                LogCannotWatch(_logger, silo, error.Message);
                return;
            }
            catch (Exception error) when (error is DataplaneException or ArgumentException)
            {
                LogCannotWatch(_logger, silo, error.Message);
                watch = null;
            }

            _watches[silo] = watch;
            watch?.Ended.ContinueWith(
                static (ended, state) =>
                {
                    var (beacons, silo) = ((PeerBeacons, string))state!;
                    if (ended.Exception?.InnerException is { } error)
                    {
                        LogCannotWatch(beacons._logger, silo, error.Message);
                    }
                },
                (this, silo),
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
    }

    /// <summary>Whether <paramref name="silo"/>'s beacon was seen to die less than <paramref name="window"/> ago.</summary>
    public bool DiedWithin(string silo, TimeSpan window)
    {
        lock (_lock)
        {
            return _diedAt.TryGetValue(silo, out var at) && _time.GetElapsedTime(at) < window;
        }
    }

    private void OnDied(string silo)
    {
        lock (_lock)
        {
            _diedAt[silo] = _time.GetTimestamp();
        }

        LogDied(_logger, silo);
        _onDied(silo);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var watch in _watches.Values)
            {
                watch?.Dispose();
            }

            _watches.Clear();
        }
    }

    [LoggerMessage(EventId = 5301, Level = LogLevel.Warning, Message = "Silo {Silo}'s process died (its node beacon went out unattended): its connections close now")]
    private static partial void LogDied(ILogger logger, string silo);

    [LoggerMessage(EventId = 5302, Level = LogLevel.Warning, Message = "Silo {Silo} runs without a node beacon ({Reason}): its peers on this node hear of its death from its connections only")]
    private static partial void LogNoBeacon(ILogger logger, string silo, string reason);

    [LoggerMessage(EventId = 5303, Level = LogLevel.Warning, Message = "Cannot watch silo {Silo}'s node beacon ({Reason}): its death is heard from its connections only")]
    private static partial void LogCannotWatch(ILogger logger, string silo, string reason);
}
