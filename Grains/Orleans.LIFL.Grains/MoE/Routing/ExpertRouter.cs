namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// A session's datapath to its experts, through its copy of the <see cref="ExpertRoutingTable"/>. A call that misses
/// its deadline — a small multiple of the session's smoothed expert latency — or fails (its silo died: the connection
/// closed, or it cannot be reached) is replayed at once to the next candidate, without waiting for the cluster to
/// declare anything. The failed replica's silo is suspected from then on, so the session's other calls skip it; the
/// deployment hears of the failure and sends a new table when it has promoted shadows.
/// </summary>
public sealed class ExpertRouter
{
    /// <summary>A session's first calls may activate a replica: they get this long before being replayed.</summary>
    public static readonly TimeSpan FirstCallDeadline = TimeSpan.FromSeconds(2);

    /// <summary>How long a session keeps away from a silo it suspects, unless the deployment confirms it dead.</summary>
    public static readonly TimeSpan SuspicionTime = TimeSpan.FromSeconds(10);

    private const double Smoothing = 0.1;
    private readonly Func<ExpertReplica, IExpertGrain> _resolve;
    private readonly MoeDeploymentSpec _spec;
    private readonly TimeProvider _time;
    private readonly Action<ExpertReplica, Exception> _onFailure;
    private readonly Dictionary<string, long> _suspected = new(StringComparer.Ordinal);
    private HashSet<string> _dead;
    private double _latencyMs;
    private int _samples;

    /// <param name="onFailure">Told of each failed or late call (the session reports it to the deployment).</param>
    public ExpertRouter(
        ExpertRoutingTable table, MoeDeploymentSpec spec, Func<ExpertReplica, IExpertGrain> resolve, TimeProvider time, Action<ExpertReplica, Exception> onFailure)
    {
        Table = table ?? throw new ArgumentNullException(nameof(table));
        _spec = spec ?? throw new ArgumentNullException(nameof(spec));
        _resolve = resolve ?? throw new ArgumentNullException(nameof(resolve));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _onFailure = onFailure ?? throw new ArgumentNullException(nameof(onFailure));
        _dead = [.. table.DeadSilos];
    }

    public ExpertRoutingTable Table { get; private set; }

    /// <summary>Calls replayed to another replica so far.</summary>
    public int Replays { get; private set; }

    /// <summary>Calls that missed their deadline.</summary>
    public int Timeouts { get; private set; }

    public double SmoothedLatencyMs => _latencyMs;

    /// <summary>The deadline of the next call (replays once it passes).</summary>
    public TimeSpan Deadline =>
        _samples == 0
            ? FirstCallDeadline
            : TimeSpan.FromMilliseconds(Math.Min(Math.Max(_spec.MinExpertDeadline.TotalMilliseconds, _spec.DeadlineMultiple * _latencyMs), FirstCallDeadline.TotalMilliseconds));

    /// <summary>Takes a newer table from the deployment; an older one (reordered delivery) is ignored.</summary>
    public bool Update(ExpertRoutingTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.Version <= Table.Version || table.Epoch != Table.Epoch)
        {
            return false;
        }

        Table = table;
        _dead = [.. table.DeadSilos];
        return true;
    }

    /// <summary>Whether the session would avoid this silo now.</summary>
    public bool IsSuspected(string silo) =>
        _dead.Contains(silo) || (_suspected.TryGetValue(silo, out var since) && _time.GetElapsedTime(since) < SuspicionTime);

    /// <summary>Runs expert (<paramref name="layer"/>, <paramref name="expert"/>) on <paramref name="routed"/>, failing over along its candidates.</summary>
    public async Task<float[]> CallAsync(int layer, int expert, float[] routed)
    {
        var candidates = Table.For(layer, expert);
        if (candidates.Count == 0)
        {
            throw new ExpertUnavailableException($"Expert ({layer}, {expert}) of {Table.Deployment} has no replica left.");
        }

        // Healthy candidates in table order, then the suspected ones as a last resort.
        var order = candidates.Where(c => !IsSuspected(c.Silo)).Concat(candidates.Where(c => IsSuspected(c.Silo))).ToList();
        var reroute = _spec.Recovery == RecoveryMode.Reroute;
        Exception? last = null;
        for (var attempt = 0; attempt < order.Count; attempt++)
        {
            var replica = order[attempt];
            var grain = _resolve(replica);
            var started = _time.GetTimestamp();
            if (attempt > 0)
            {
                Replays++;
            }

            try
            {
                var call = attempt == 0 ? grain.Run(routed) : grain.Replay(routed);
                var output = reroute ? await call.WaitAsync(Deadline, _time) : await call;
                Observe(_time.GetElapsedTime(started).TotalMilliseconds);
                return output;
            }
            catch (Exception error) when (error is not ArgumentException)
            {
                if (error is TimeoutException)
                {
                    Timeouts++;
                }

                last = error;
                _suspected[replica.Silo] = _time.GetTimestamp();
                _onFailure(replica, error);
                if (!reroute)
                {
                    break;
                }
            }
        }

        throw new ExpertUnavailableException($"Expert ({layer}, {expert}) of {Table.Deployment} failed on every replica: {last?.Message}", last);
    }

    private void Observe(double milliseconds)
    {
        _latencyMs = _samples == 0 ? milliseconds : ((1 - Smoothing) * _latencyMs) + (Smoothing * milliseconds);
        _samples++;
    }
}

/// <summary>No replica of an expert answered.</summary>
public sealed class ExpertUnavailableException : Exception
{
    public ExpertUnavailableException(string message) : base(message)
    {
    }

    public ExpertUnavailableException(string message, Exception? inner) : base(message, inner)
    {
    }
}
