namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// A session's datapath to its experts, through its copy of the <see cref="ExpertRoutingTable"/>. A call that misses
/// its deadline — a small multiple of the session's smoothed expert latency — or fails (its silo died: the connection
/// closed, or it cannot be reached) is replayed at once to the next candidate, without waiting for the cluster to
/// declare anything. The failed replica's silo is suspected from then on, so the session's other calls skip it; the
/// deployment hears of the failure and sends a new table when it has promoted shadows. A late call is replayed only to
/// a candidate that is not suspected itself: once the primary's silo died, its shadow's silo carries the load alone and
/// may be slow, and replaying its late calls to the dead silo would only add work — they are waited for instead.
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
    private readonly Func<Task<ExpertRoutingTable?>>? _refresh;
    private readonly Dictionary<string, long> _suspected = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _lastAnswered = new(StringComparer.Ordinal);
    private HashSet<string> _dead;
    private double _latencyMs;
    private int _samples;

    /// <param name="onFailure">Told of each failed or late call (the session reports it to the deployment).</param>
    /// <param name="refresh">
    /// Asked for the deployment's current table when every candidate of an expert failed (Reroute mode): the table the
    /// session holds may be stale (a push was lost, or the deployment moved and no longer knew the session).
    /// </param>
    public ExpertRouter(
        ExpertRoutingTable table,
        MoeDeploymentSpec spec,
        Func<ExpertReplica, IExpertGrain> resolve,
        TimeProvider time,
        Action<ExpertReplica, Exception> onFailure,
        Func<Task<ExpertRoutingTable?>>? refresh = null)
    {
        Table = table ?? throw new ArgumentNullException(nameof(table));
        _spec = spec ?? throw new ArgumentNullException(nameof(spec));
        _resolve = resolve ?? throw new ArgumentNullException(nameof(resolve));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _onFailure = onFailure ?? throw new ArgumentNullException(nameof(onFailure));
        _refresh = refresh;
        _dead = [.. table.DeadSilos];
    }

    public ExpertRoutingTable Table { get; private set; }

    /// <summary>Calls replayed to another replica so far.</summary>
    public int Replays { get; private set; }

    /// <summary>Calls that missed their deadline.</summary>
    public int Timeouts { get; private set; }

    /// <summary>Late calls that were waited for rather than replayed, every other candidate being suspected.</summary>
    public int WaitedOut { get; private set; }

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

    /// <summary>
    /// The deadline of a call carrying <paramref name="rows"/> tokens: <see cref="Deadline"/> for each (the smoothed
    /// latency is that of one-token calls), at most <see cref="FirstCallDeadline"/>.
    /// </summary>
    public TimeSpan DeadlineFor(int rows) => TimeSpan.FromTicks(Math.Min(Deadline.Ticks * rows, FirstCallDeadline.Ticks));

    /// <summary>
    /// Runs expert (<paramref name="layer"/>, <paramref name="expert"/>) on <paramref name="routed"/> — the routed states
    /// of <paramref name="rows"/> tokens, one after the other — failing over along its candidates; when all of them
    /// failed, once more along those of the deployment's current table, if newer.
    /// </summary>
    public Task<float[]> CallAsync(int layer, int expert, float[] routed, int rows = 1) => CallAsync(layer, expert, routed, rows, mayRefresh: true);

    /// <summary>Times the session's table proved stale and a newer one was fetched.</summary>
    public int Refreshes { get; private set; }

    private async Task<float[]> CallAsync(int layer, int expert, float[] routed, int rows, bool mayRefresh)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        var tried = Table.Version;
        var candidates = Table.For(layer, expert);
        if (candidates.Count == 0)
        {
            return await RefreshOrFailAsync(
                layer, expert, routed, rows, tried, mayRefresh, new ExpertUnavailableException($"Expert ({layer}, {expert}) of {Table.Deployment} has no replica left."));
        }

        // Healthy candidates in table order, then the suspected ones as a last resort, the most recently answering first.
        var order = candidates.Where(c => !IsSuspected(c.Silo))
            .Concat(candidates.Where(c => IsSuspected(c.Silo)).OrderByDescending(c => _lastAnswered.GetValueOrDefault(c.Silo, long.MinValue)))
            .ToList();
        var reroute = _spec.Recovery == RecoveryMode.Reroute;

        // A call that missed its deadline is not given up: whichever of the late calls and the replay answers first wins.
        var pending = new List<(Task<float[]> Call, ExpertReplica Replica, long Started)>();
        Exception? last = null;
        for (var attempt = 0; attempt < order.Count && (reroute || attempt == 0); attempt++)
        {
            var replica = order[attempt];
            if (attempt > 0)
            {
                Replays++;
            }

            var grain = _resolve(replica);
            var call = attempt == 0 ? grain.Run(routed) : grain.Replay(routed);
            var attemptStarted = _time.GetTimestamp();
            pending.Add((call, replica, attemptStarted));

            // WaitAsync's timer goes away with the answer: no timer outlives a call that answered in time.
            var deadline = DeadlineFor(rows);
            var waitingOut = false;
            while (true)
            {
                var any = Task.WhenAny(pending.Select(p => p.Call));
                Task<float[]>? done;
                if (!reroute || waitingOut)
                {
                    done = await any;
                }
                else
                {
                    var remaining = deadline - _time.GetElapsedTime(attemptStarted);
                    try
                    {
                        done = await any.WaitAsync(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, _time);
                    }
                    catch (TimeoutException)
                    {
                        done = null;
                    }
                }

                if (done is null)
                {
                    Timeouts++;
                    if (attempt + 1 < order.Count && IsSuspected(order[attempt + 1].Silo) && !IsSuspected(replica.Silo))
                    {
                        // Every other candidate is suspected (dead, or late itself): a replay there would most likely be
                        // lost work, so this call, on a silo not known to be failing, is waited for until it answers or fails.
                        WaitedOut++;
                        waitingOut = true;
                        continue;
                    }

                    Suspect(replica, new TimeoutException($"{replica.Key} did not answer within {deadline.TotalMilliseconds:0} ms"));
                    _ = TrustAgainWhenAnsweredAsync(call, replica.Silo);
                    break;
                }

                var answered = pending.First(p => p.Call == done);
                if (answered.Call.IsCompletedSuccessfully)
                {
                    var now = _time.GetTimestamp();
                    _lastAnswered[answered.Replica.Silo] = now;
                    if (rows == 1)
                    {
                        Observe(_time.GetElapsedTime(answered.Started, now).TotalMilliseconds);
                    }

                    return answered.Call.Result;
                }

                pending.Remove(answered);
                last = answered.Call.Exception?.InnerException ?? answered.Call.Exception;
                if (last is ArgumentException)
                {
                    // Bad input fails on every replica alike: nothing to replay.
                    throw last;
                }

                Suspect(answered.Replica, last!);
                if (answered.Call == call)
                {
                    break;
                }
            }
        }

        // Every candidate was tried: wait for any late call still out.
        while (pending.Count > 0)
        {
            var done = await Task.WhenAny(pending.Select(p => p.Call));
            var answered = pending.First(p => p.Call == done);
            if (done.IsCompletedSuccessfully)
            {
                return done.Result;
            }

            pending.Remove(answered);
            last = done.Exception?.InnerException ?? done.Exception;
        }

        return await RefreshOrFailAsync(
            layer, expert, routed, rows, tried, mayRefresh,
            new ExpertUnavailableException($"Expert ({layer}, {expert}) of {Table.Deployment} failed on every replica: {last?.Message}", last));
    }

    /// <summary>
    /// Every candidate this table knows failed. The table may be stale (a push was lost, or the deployment moved and no
    /// longer knew the session): in Reroute mode the deployment's current one is asked for once, and a newer table (or
    /// one a sibling call fetched meanwhile) gets a second try; otherwise <paramref name="failure"/> stands.
    /// </summary>
    private async Task<float[]> RefreshOrFailAsync(int layer, int expert, float[] routed, int rows, long tried, bool mayRefresh, ExpertUnavailableException failure)
    {
        if (mayRefresh && _refresh is not null && _spec.Recovery == RecoveryMode.Reroute)
        {
            if (await _refresh() is { } current)
            {
                Update(current);
            }

            if (Table.Version > tried)
            {
                Refreshes++;
                return await CallAsync(layer, expert, routed, rows, mayRefresh: false);
            }
        }

        throw failure;
    }

    private void Suspect(ExpertReplica replica, Exception error)
    {
        _suspected[replica.Silo] = _time.GetTimestamp();
        _onFailure(replica, error);
    }

    private async Task TrustAgainWhenAnsweredAsync(Task<float[]> call, string silo)
    {
        try
        {
            await call;
        }
        catch (Exception)
        {
            return;
        }

        _suspected.Remove(silo);
        _lastAnswered[silo] = _time.GetTimestamp();
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
