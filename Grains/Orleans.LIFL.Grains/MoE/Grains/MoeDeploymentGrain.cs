using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Grains.MoE.Model;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// Owns a deployed MoE model: places every expert's primary and shadows on distinct silos (anti-affinity), keeps the
/// routing table, and handles failures. In <see cref="RecoveryMode.Reroute"/> a failed expert silo's replicas leave
/// the table (the shadows become primaries), new shadows are loaded elsewhere, and every session gets the new table;
/// sessions have already replayed their calls by then. In <see cref="RecoveryMode.Restart"/> (the baseline) it waits
/// for the cluster to declare the silo dead, then deactivates every session and expert and loads everything again.
/// </summary>
public interface IMoeDeploymentGrain : IGrainWithStringKey
{
    /// <summary>
    /// Loads every expert replica and, in Tarragon mode, plays a session failover through on every silo once it is ready
    /// (<see cref="DeploymentStatus.Rehearsals"/>); idempotent for the same spec.
    /// </summary>
    [ResponseTimeout("00:10:00")]
    Task<DeploymentStatus> Deploy(MoeDeploymentSpec spec);

    /// <summary>
    /// Takes the deployment out of service: its attached sessions fail (their clients are told why), every expert replica
    /// unloads its weights and their silos give the memory back, and the deployment's state is cleared, so the name can
    /// be deployed again. Nothing to do when not deployed.
    /// </summary>
    Task Undeploy();

    /// <summary>A session joins: it gets the spec and the routing table, and will be sent newer tables.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:10:00")]
    Task<SessionAttachment> Attach(string session, string silo);

    [AlwaysInterleave]
    [OneWay]
    Task Detach(string session);

    /// <summary>A session's call to <paramref name="replica"/> failed or missed its deadline.</summary>
    [AlwaysInterleave]
    [OneWay]
    Task ReportExpertFailure(ExpertReplica replica, string reporter, string error);

    /// <summary>A client lost its session on <paramref name="silo"/>.</summary>
    [AlwaysInterleave]
    [OneWay]
    Task ReportSessionFailure(string session, string silo);

    /// <summary>
    /// The current routing table, once no failure is being handled (or after <paramref name="wait"/>); registers the
    /// session so that newer tables are sent to it. A session whose candidates for an expert all failed asks this before
    /// giving up: its table may be stale (the deployment moved to another silo and no longer knew the session).
    /// </summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:01:00")]
    Task<ExpertRoutingTable?> CurrentRoutes(string session, string silo, TimeSpan wait);

    /// <summary>One second of a session's tokens (see <see cref="TokenMeter"/>), for the telemetry.</summary>
    [AlwaysInterleave]
    [OneWay]
    Task ReportTokens(SessionTokenReport report);

    /// <summary>A client's request moved to a new incarnation: what it waited between two tokens, and where that went.</summary>
    [AlwaysInterleave]
    [OneWay]
    Task ReportResume(SessionResume resume);

    /// <summary>Recent requests, tokens and time between tokens second by second, and each failure event's stall.</summary>
    [AlwaysInterleave]
    [ReadOnly]
    Task<MoeTelemetry> Telemetry();

    /// <summary>Null when not deployed or being undeployed.</summary>
    [AlwaysInterleave]
    [ReadOnly]
    Task<MoeDeploymentSpec?> GetSpec();

    [AlwaysInterleave]
    [ReadOnly]
    Task<DeploymentStatus> Status();

    /// <summary>The status once the deployment is ready at epoch <paramref name="epoch"/> or later, or after <paramref name="wait"/>.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:10:00")]
    Task<DeploymentStatus> WaitForEpoch(int epoch, TimeSpan wait);

    /// <summary>Handles the failure of <paramref name="silo"/> (one at a time; called by the deployment itself).</summary>
    [OneWay]
    Task Recover(string silo, string reason);
}

/// <summary>What a deployment persists: its spec and routing table (sessions attach again after it moves).</summary>
[GenerateSerializer]
public sealed class MoeDeploymentState
{
    [Id(0)]
    public MoeDeploymentSpec? Spec { get; set; }

    [Id(1)]
    public ExpertRoutingTable? Routes { get; set; }

    [Id(2)]
    public List<MoeFailureEvent> Events { get; set; } = [];

    [Id(3)]
    public int NextReplica { get; set; }

    [Id(4)]
    public DeploymentPhase Phase { get; set; }

    [Id(5)]
    public TimeSpan LoadTime { get; set; }

    /// <summary>Why the last Deploy stopped half way (phase <see cref="DeploymentPhase.Failed"/>).</summary>
    [Id(6)]
    public string? Problem { get; set; }
}

[PreferLocalPlacement]
public sealed partial class MoeDeploymentGrain(
    IClusterResources resources,
    TimeProvider time,
    ILogger<MoeDeploymentGrain> logger,
    [PersistentState("moe-deployment")] IPersistentState<MoeDeploymentState> stored) : Grain, IMoeDeploymentGrain
{
    private const int EventsKept = 64;
    private static readonly TimeSpan WarmTimeout = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan PingTimeout = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MembershipWatchPeriod = TimeSpan.FromSeconds(1);

    /// <summary>How long the baseline waits for the cluster to declare a reported silo dead before calling it a false alarm.</summary>
    private static readonly TimeSpan VerdictPatience = TimeSpan.FromMinutes(1);
    private readonly Dictionary<string, string> _sessions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _recovering = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _reportedAt = new(StringComparer.Ordinal);
    private readonly TokenTelemetry _telemetry = new(time);

    /// <summary>The request ids of this deployment's rehearsed session failovers (kept out of its telemetry).</summary>
    private readonly HashSet<string> _rehearsals = new(StringComparer.Ordinal);
    private FailoverRehearsal[] _rehearsed = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private MoeDeploymentState State => stored.State;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        RegisterGrainTimer(WatchMembershipAsync, MembershipWatchPeriod, MembershipWatchPeriod);
        return Task.CompletedTask;
    }

    public async Task<DeploymentStatus> Deploy(MoeDeploymentSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Problem() is { } problem)
        {
            throw new ArgumentException($"Deployment {GrainId.Key}: {problem}.", nameof(spec));
        }

        if (GrainId.Key.Length == 0 || GrainId.Key.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Deployment name '{GrainId.Key}' must be non-empty and without '/'.", nameof(spec));
        }

        var unfinished = State.Routes;
        if (State.Spec is { } current)
        {
            if (!(current == spec || SameSpec(current, spec)))
            {
                throw new InvalidOperationException(State.Phase == DeploymentPhase.Failed
                    ? $"Deployment {GrainId.Key} holds the unfinished Deploy of another spec ({current.Source}): undeploy it first, or deploy under another name."
                    : $"Deployment {GrainId.Key} already serves another spec ({current.Source}); deploy under another name.");
            }

            // Deploying here is an attempt whose activation died half way (calls to the grain do not interleave): like a
            // failed one, it is finished now, on a new plan.
            if (State.Phase is not (DeploymentPhase.Failed or DeploymentPhase.Deploying))
            {
                return StatusNow();
            }

            LogFinishingDeploy(logger, GrainId.Key, State.Phase, State.Problem ?? "its silo stopped");
        }

        var config = MoeModelCache.ConfigOf(spec);
        var silos = ExpertSilos(spec);
        var watch = Stopwatch.StartNew();
        State.Spec = spec;
        State.Phase = DeploymentPhase.Deploying;
        State.Problem = null;
        State.Routes = Plan(config, silos, spec.Shadows, epoch: 0, version: 1);
        await stored.WriteStateAsync();
        Changed();
        try
        {
            if (unfinished is not null)
            {
                // The earlier attempt's replicas that the new plan places elsewhere (the silos changed) let their weights go.
                var planned = State.Routes.Replicas.Select(r => r.Key).ToHashSet(StringComparer.Ordinal);
                await UnloadAsync(unfinished.Replicas.Where(r => !planned.Contains(r.Key)));
            }

            await GrainFactory.GetGrain<Index.IWorkloadIndexGrain>(Index.WorkloadIndexes.MoeDeployments).Add(GrainId.Key);
            var replicas = State.Routes.Replicas.ToList();
            var failures = new Dictionary<string, string>(StringComparer.Ordinal);
            var loaded = await WarmAsync(replicas, failures);
            if (loaded.Count < replicas.Count)
            {
                var (key, reason) = failures.OrderBy(f => f.Key, StringComparer.Ordinal).First();
                throw new InvalidOperationException(
                    $"{replicas.Count - loaded.Count} of {replicas.Count} expert replicas did not load; {key}: {reason}");
            }

            await PrepareSilosAsync(epoch: 0);
        }
        catch (Exception error)
        {
            State.Phase = DeploymentPhase.Failed;
            State.Problem = error.Message;
            LogDeployFailed(logger, GrainId.Key, error.Message);
            Changed();
            await stored.WriteStateAsync();
            throw new InvalidOperationException(
                $"Deployment {GrainId.Key} did not finish: {error.Message}. Deploy it again to finish it, or undeploy it.", error);
        }

        State.Phase = DeploymentPhase.Ready;
        State.LoadTime = watch.Elapsed;
        await stored.WriteStateAsync();
        LogDeployed(logger, GrainId.Key, config.Layers * config.Experts, State.Routes.Replicas.Count(), silos.Count, watch.Elapsed.TotalMilliseconds);
        Changed();
        if (spec.Recovery == RecoveryMode.Reroute)
        {
            // Ready (sessions attach meanwhile): the rehearsal's sessions are sessions of this deployment.
            await RehearseSessionFailoversAsync();
        }

        return StatusNow();
    }

    /// <summary>
    /// Plays a session failover through on every silo (see <see cref="SessionFailoverRehearsal"/>), so that the first
    /// real one costs what later ones do; a silo where it fails is logged, and the deployment serves all the same.
    /// </summary>
    private async Task RehearseSessionFailoversAsync()
    {
        var started = time.GetTimestamp();
        var silos = resources.ActiveSilos().Select(s => s.Silo.ToString()).ToList();
        using var patience = new CancellationTokenSource(WarmTimeout);
        _rehearsed = await Task.WhenAll(silos.Select(async silo =>
        {
            var requestId = $"rehearsal-{Guid.NewGuid():N}";
            _rehearsals.Add(requestId);
            var began = time.GetTimestamp();
            try
            {
                var resumedOn = await SessionFailoverRehearsal.RunAsync(GrainFactory, GrainId.Key, requestId, silo, patience.Token);
                return new FailoverRehearsal(silo, resumedOn, time.GetElapsedTime(began), null);
            }
            catch (Exception error)
            {
                LogRehearsalFailed(logger, GrainId.Key, silo, error.Message);
                return new FailoverRehearsal(silo, null, time.GetElapsedTime(began), error.Message);
            }
        }));

        // The stopped first incarnations never detach (as a killed session does not): no table goes to them.
        foreach (var session in _sessions.Keys.Where(k => _rehearsals.Contains(InferenceSessions.Parse(k).RequestId)).ToList())
        {
            _sessions.Remove(session);
        }

        LogRehearsed(logger, GrainId.Key, _rehearsed.Count(r => r.Problem is null), silos.Count, time.GetElapsedTime(started).TotalMilliseconds);
    }

    public async Task Undeploy()
    {
        if (State.Spec is null)
        {
            return;
        }

        // Deploying and restarting happen in turns this one does not interleave with: a phase other than Ready seen here
        // is that of an attempt whose silo died, and undeploying is the way out of it. A recovery still queued finds the
        // deployment gone and does nothing.
        var replicas = State.Routes is { } routes ? routes.Replicas.Where(r => !routes.DeadSilos.Contains(r.Silo)).ToList() : [];
        State.Phase = DeploymentPhase.Undeploying;
        Changed();
        var sessions = _sessions.Keys.ToList();
        _sessions.Clear();
        var reason = $"deployment {GrainId.Key} was undeployed";
        await Task.WhenAll(sessions.Select(s => BestEffort(GrainFactory.GetGrain<IInferenceSessionGrain>(s).Fail(reason))));
        await UnloadAsync(replicas);
        var hosts = replicas.Select(r => r.Silo).ToHashSet(StringComparer.Ordinal);
        await Task.WhenAll(resources.ActiveSilos().Select(s => BestEffort(
            GrainFactory.GetGrain<IMoeSiloGrain>(MoeSilos.Key(s.Statistics?.NodeId ?? "", s.Silo.ToString())).Reclaim(GrainId.Key, hosts.Contains(s.Silo.ToString())))));
        try
        {
            await GrainFactory.GetGrain<Index.IWorkloadIndexGrain>(Index.WorkloadIndexes.MoeDeployments).Remove(GrainId.Key);
        }
        catch (Exception error) when (error is SiloUnavailableException or TimeoutException)
        {
            // The index's silo just died (it comes back elsewhere once the cluster declares that): the deployment is gone
            // all the same, and the dashboard shows a listed name that is not deployed as such.
            LogIndexNotUpdated(logger, GrainId.Key, error.Message);
        }

        await stored.ClearStateAsync();
        _rehearsals.Clear();
        _rehearsed = [];
        LogUndeployed(logger, GrainId.Key, sessions.Count, replicas.Count);
        Changed();
    }

    public async Task<SessionAttachment> Attach(string session, string silo)
    {
        var deadline = time.GetTimestamp();
        while (State.Phase != DeploymentPhase.Ready)
        {
            if (State.Spec is null)
            {
                // The request names a deployment that does not exist (or no longer does): no retry mends that.
                throw new ArgumentException($"Deployment {GrainId.Key} is not deployed: deploy it before opening sessions.", nameof(session));
            }

            if (State.Phase == DeploymentPhase.Failed)
            {
                throw new ArgumentException($"Deployment {GrainId.Key} is not deployed: its Deploy did not finish ({State.Problem}); deploy it again.", nameof(session));
            }

            if (time.GetElapsedTime(deadline) > WarmTimeout)
            {
                throw new TimeoutException($"Deployment {GrainId.Key} was not ready within {WarmTimeout} ({State.Phase}).");
            }

            await WaitChangedAsync(TimeSpan.FromSeconds(1));
        }

        _sessions[session] = silo;

        // The session ignores a table it has; the call makes this silo look the session up now, so that the table a
        // failure makes reaches it without a directory round trip (and a database connection opened for it) right then.
        _ = GrainFactory.GetGrain<IInferenceSessionGrain>(session).UpdateRoutes(State.Routes!);
        return new SessionAttachment(State.Spec!, State.Routes!);
    }

    public Task Detach(string session)
    {
        _sessions.Remove(session);
        return Task.CompletedTask;
    }

    public Task ReportExpertFailure(ExpertReplica replica, string reporter, string error)
    {
        ArgumentNullException.ThrowIfNull(replica);
        RequestRecovery(replica.Silo, $"{reporter}: {replica.Key} failed ({error})");
        return Task.CompletedTask;
    }

    public Task ReportSessionFailure(string session, string silo)
    {
        _sessions.Remove(session);
        RequestRecovery(silo, $"session {session} was lost");
        return Task.CompletedTask;
    }

    public async Task<ExpertRoutingTable?> CurrentRoutes(string session, string silo, TimeSpan wait)
    {
        ArgumentException.ThrowIfNullOrEmpty(session);
        var started = time.GetTimestamp();
        while (_recovering.Count > 0 && time.GetElapsedTime(started) < wait)
        {
            await WaitChangedAsync(wait - time.GetElapsedTime(started));
        }

        if (State.Routes is not null)
        {
            _sessions[session] = silo;
        }

        return State.Routes;
    }

    public Task ReportTokens(SessionTokenReport report)
    {
        try
        {
            if (_rehearsals.Contains(InferenceSessions.Parse(report.Session).RequestId))
            {
                // A rehearsed failover: no user's request.
                return Task.CompletedTask;
            }

            _telemetry.Record(report);
        }
        catch (ArgumentException error)
        {
            LogBadTelemetry(logger, GrainId.Key, error.Message);
        }

        return Task.CompletedTask;
    }

    public Task ReportResume(SessionResume resume)
    {
        try
        {
            _telemetry.RecordResume(resume);
        }
        catch (ArgumentException error)
        {
            LogBadTelemetry(logger, GrainId.Key, error.Message);
        }

        return Task.CompletedTask;
    }

    public Task<MoeTelemetry> Telemetry() => Task.FromResult(_telemetry.Snapshot(State.Events));

    // Being undeployed counts as not deployed: a replica that a late call activates after its unload would otherwise load
    // weights the deployment no longer owns, and live on under a key a new deployment of the name plans again.
    public Task<MoeDeploymentSpec?> GetSpec() => Task.FromResult(State.Phase == DeploymentPhase.Undeploying ? null : State.Spec);

    public Task<DeploymentStatus> Status() => Task.FromResult(StatusNow());

    public async Task<DeploymentStatus> WaitForEpoch(int epoch, TimeSpan wait)
    {
        var started = time.GetTimestamp();
        while (!(State.Phase == DeploymentPhase.Ready && (State.Routes?.Epoch ?? -1) >= epoch) && time.GetElapsedTime(started) < wait)
        {
            await WaitChangedAsync(wait - time.GetElapsedTime(started));
        }

        return StatusNow();
    }

    public async Task Recover(string silo, string reason)
    {
        try
        {
            if (State.Spec is null || State.Routes is null || State.Routes.DeadSilos.Contains(silo))
            {
                return;
            }

            if (State.Spec.Recovery == RecoveryMode.Restart)
            {
                await RestartAsync(silo, reason);
            }
            else
            {
                await RerouteAsync(silo, reason);
            }
        }
        finally
        {
            _recovering.Remove(silo);
            Changed();
        }
    }

    /// <summary>Tarragon: promote the shadows of every expert the silo hosted, tell the sessions, then load new shadows.</summary>
    private async Task RerouteAsync(string silo, string reason)
    {
        var started = time.GetTimestamp();
        var routes = State.Routes!;
        var hosted = routes.Replicas.Where(r => r.Silo == silo).ToList();
        if (hosted.Count == 0)
        {
            Record(new MoeFailureEvent(DateTime.UtcNow, silo, "session-silo", reason, 0, 0, TimeSpan.Zero, routes.Epoch));
            return;
        }

        if (await AnswersAsync(hosted[0]))
        {
            LogFalseAlarm(logger, GrainId.Key, silo, reason);
            Record(new MoeFailureEvent(DateTime.UtcNow, silo, "false-alarm", reason, 0, 0, time.GetElapsedTime(started), routes.Epoch));
            return;
        }

        var promoted = routes.Candidates.Count(c => c.Length > 0 && c[0].Silo == silo);
        routes = routes with
        {
            Version = routes.Version + 1,
            Candidates = [.. routes.Candidates.Select(c => c.Where(r => r.Silo != silo).ToArray())],
            DeadSilos = [.. routes.DeadSilos, silo],
        };
        State.Routes = routes;
        Publish(routes);
        var promotedIn = time.GetElapsedTime(started);
        LogPromoted(logger, GrainId.Key, silo, promoted, promotedIn.TotalMilliseconds, reason);

        // New shadows on the live expert silos that hold no replica of the expert yet, the least loaded first.
        var live = ExpertSilos(State.Spec!).Where(s => !routes.DeadSilos.Contains(s.Silo)).ToList();
        var load = live.ToDictionary(s => s.Silo, s => routes.Replicas.Count(r => r.Silo == s.Silo), StringComparer.Ordinal);
        var wanted = 1 + State.Spec!.Shadows;
        var added = new List<(int Row, ExpertReplica Replica)>();
        for (var row = 0; row < routes.Candidates.Length; row++)
        {
            var candidates = routes.Candidates[row];
            if (candidates.Length >= wanted || !hosted.Any(h => RowOf(h, routes) == row))
            {
                continue;
            }

            var target = live.Where(s => candidates.All(c => c.Silo != s.Silo)).OrderBy(s => load[s.Silo]).ThenBy(s => s.Silo, StringComparer.Ordinal).FirstOrDefault();
            if (target.Silo is null)
            {
                continue;
            }

            load[target.Silo]++;
            var (layer, expert) = (row / routes.Experts, row % routes.Experts);
            added.Add((row, new ExpertReplica(
                ExpertKeys.Key(target.Node, target.Silo, GrainId.Key, routes.Epoch, layer, expert, State.NextReplica++), target.Silo)));
        }

        var warmed = await WarmAsync(added.Select(a => a.Replica));
        var current = State.Routes!;
        var candidatesNow = current.Candidates.Select(c => c.ToList()).ToArray();
        foreach (var (row, replica) in added.Where(a => warmed.Contains(a.Replica.Key)))
        {
            candidatesNow[row].Add(replica);
        }

        State.Routes = current with { Version = current.Version + 1, Candidates = [.. candidatesNow.Select(c => c.ToArray())] };
        Publish(State.Routes);
        Record(new MoeFailureEvent(DateTime.UtcNow, silo, "expert-silo", reason, promoted, warmed.Count, promotedIn, routes.Epoch));
        LogShadowsAdded(logger, GrainId.Key, warmed.Count, added.Count, time.GetElapsedTime(started).TotalMilliseconds);
        await stored.WriteStateAsync();
    }

    /// <summary>The baseline: wait for the cluster's verdict, then stop and reload everything.</summary>
    private async Task RestartAsync(string silo, string reason)
    {
        var reported = _reportedAt.TryGetValue(silo, out var at) ? at : time.GetTimestamp();
        while (resources.ActiveSilos().Any(s => s.Silo.ToString() == silo))
        {
            if (time.GetElapsedTime(reported) > VerdictPatience)
            {
                // The cluster keeps the silo: it was slow, not dead, and the baseline restarts for deaths only.
                _reportedAt.Remove(silo);
                Record(new MoeFailureEvent(DateTime.UtcNow, silo, "false-alarm", reason, 0, 0, time.GetElapsedTime(reported), State.Routes!.Epoch));
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), time);
        }

        var routes = State.Routes!;
        var epoch = routes.Epoch + 1;
        State.Phase = DeploymentPhase.Restarting;
        Changed();
        LogRestarting(logger, GrainId.Key, silo, epoch, reason);
        var sessions = _sessions.Keys.ToList();
        _sessions.Clear();
        await Task.WhenAll(sessions.Select(s => BestEffort(GrainFactory.GetGrain<IInferenceSessionGrain>(s).Abort($"deployment {GrainId.Key} restarts"))));
        await UnloadAsync(routes.Replicas.Where(r => r.Silo != silo));

        var config = MoeModelCache.ConfigOf(State.Spec!);
        var live = ExpertSilos(State.Spec!);
        var dead = routes.DeadSilos.Append(silo).ToArray();
        State.Routes = Plan(config, live, State.Spec!.Shadows, epoch, routes.Version + 1) with { DeadSilos = dead };
        await WarmAsync(State.Routes.Replicas);
        await PrepareSilosAsync(epoch);
        State.Phase = DeploymentPhase.Ready;
        var took = time.GetElapsedTime(reported);
        Record(new MoeFailureEvent(DateTime.UtcNow, silo, "restart", reason, 0, 0, took, epoch));
        await stored.WriteStateAsync();
        LogRestarted(logger, GrainId.Key, epoch, took.TotalMilliseconds);
        Changed();
    }

    private void RequestRecovery(string silo, string reason)
    {
        if (State.Routes is null || State.Routes.DeadSilos.Contains(silo) || !_recovering.Add(silo))
        {
            return;
        }

        _reportedAt.TryAdd(silo, time.GetTimestamp());
        _ = AsReference<IMoeDeploymentGrain>().Recover(silo, reason);
    }

    /// <summary>Silos the cluster declared dead are recovered from even when no session noticed.</summary>
    private Task WatchMembershipAsync(CancellationToken cancellationToken)
    {
        if (State.Routes is not { } routes || State.Phase != DeploymentPhase.Ready)
        {
            return Task.CompletedTask;
        }

        var active = resources.ActiveSilos().Select(s => s.Silo.ToString()).ToHashSet(StringComparer.Ordinal);
        foreach (var silo in routes.Replicas.Select(r => r.Silo).Concat(_sessions.Values).Distinct(StringComparer.Ordinal).Where(s => !active.Contains(s)).ToList())
        {
            RequestRecovery(silo, "the cluster declared it dead");
        }

        return Task.CompletedTask;
    }

    private async Task<bool> AnswersAsync(ExpertReplica replica)
    {
        if (!resources.ActiveSilos().Any(s => s.Silo.ToString() == replica.Silo))
        {
            return false;
        }

        try
        {
            await GrainFactory.GetGrain<IExpertGrain>(replica.Key).Ping().WaitAsync(PingTimeout, time);
            return true;
        }
        catch (Exception)
        {
            return false;
        }
    }

    /// <summary>
    /// Activates (so loads) the given replicas, a few at a time; returns the keys that loaded, and puts why each other one
    /// did not in <paramref name="failures"/> when given.
    /// </summary>
    private async Task<HashSet<string>> WarmAsync(IEnumerable<ExpertReplica> replicas, Dictionary<string, string>? failures = null)
    {
        var loaded = new HashSet<string>(StringComparer.Ordinal);
        foreach (var batch in replicas.Chunk(16))
        {
            var results = await Task.WhenAll(batch.Select(async r =>
            {
                try
                {
                    await GrainFactory.GetGrain<IExpertGrain>(r.Key).Warm().WaitAsync(WarmTimeout, time);
                    return r.Key;
                }
                catch (Exception error)
                {
                    LogWarmFailed(logger, r.Key, error.Message);
                    failures?.Add(r.Key, error.Message); // the grain's turns do not interleave: no lock

                    return null;
                }
            }));
            loaded.UnionWith(results.OfType<string>());
        }

        return loaded;
    }

    /// <summary>Has every active silo load the attention side, so that sessions open (or resume) there without loading it.</summary>
    private async Task PrepareSilosAsync(int epoch)
    {
        var spec = State.Spec!;
        var probes = State.Routes!.Replicas.DistinctBy(r => r.Silo).ToArray();
        await Task.WhenAll(resources.ActiveSilos().Select(s => BestEffort(
            GrainFactory.GetGrain<IMoeSiloGrain>(MoeSilos.Key(s.Statistics?.NodeId ?? "", s.Silo.ToString())).Prepare(GrainId.Key, spec, epoch, probes))));
    }

    private void Publish(ExpertRoutingTable routes)
    {
        foreach (var session in _sessions.Keys)
        {
            _ = GrainFactory.GetGrain<IInferenceSessionGrain>(session).UpdateRoutes(routes);
        }
    }

    /// <summary>
    /// Primary of logical expert i on silo i mod n, its shadows on the next silos: replicas of one expert never share a
    /// silo, and every silo carries the same share of primaries and of shadows.
    /// </summary>
    internal ExpertRoutingTable Plan(MoeConfig config, IReadOnlyList<(string Silo, string Node)> silos, int shadows, int epoch, long version)
    {
        if (silos.Count == 0)
        {
            throw new InvalidOperationException($"Deployment {GrainId.Key} has no silo to run experts on.");
        }

        var replicas = Math.Min(1 + shadows, silos.Count);
        var rows = new ExpertReplica[config.Layers * config.Experts][];
        for (var row = 0; row < rows.Length; row++)
        {
            rows[row] = new ExpertReplica[replicas];
            for (var r = 0; r < replicas; r++)
            {
                var (silo, node) = silos[(row + r) % silos.Count];
                rows[row][r] = new ExpertReplica(ExpertKeys.Key(node, silo, GrainId.Key, epoch, row / config.Experts, row % config.Experts, State.NextReplica++), silo);
            }
        }

        return new ExpertRoutingTable
        {
            Deployment = GrainId.Key,
            Version = version,
            Epoch = epoch,
            Layers = config.Layers,
            Experts = config.Experts,
            Candidates = rows,
        };
    }

    /// <summary>The active silos experts may run on, sorted, with their nodes.</summary>
    private List<(string Silo, string Node)> ExpertSilos(MoeDeploymentSpec spec)
    {
        var active = resources.ActiveSilos().Select(s => (Silo: s.Silo.ToString(), Node: s.Statistics?.NodeId ?? "")).ToList();
        if (spec.ExpertSilos.Length == 0)
        {
            return active;
        }

        var unknown = spec.ExpertSilos.Where(s => active.All(a => a.Silo != s)).ToList();
        if (unknown.Count > 0 && State.Phase == DeploymentPhase.NotDeployed)
        {
            throw new ArgumentException($"ExpertSilos names silos that are not active: {string.Join(", ", unknown)}.", nameof(spec));
        }

        return [.. active.Where(a => spec.ExpertSilos.Contains(a.Silo))];
    }

    private static int RowOf(ExpertReplica replica, ExpertRoutingTable routes)
    {
        var (_, _, layer, expert, _) = ExpertKeys.Parse(replica.Key);
        return (layer * routes.Experts) + expert;
    }

    private static bool SameSpec(MoeDeploymentSpec a, MoeDeploymentSpec b) =>
        a with { ExpertSilos = [] } == b with { ExpertSilos = [] } && a.ExpertSilos.SequenceEqual(b.ExpertSilos);

    /// <summary>Has each replica let its weights go (those on a silo that is gone have nothing to let go).</summary>
    private Task UnloadAsync(IEnumerable<ExpertReplica> replicas) =>
        Task.WhenAll(replicas.Select(r => BestEffort(GrainFactory.GetGrain<IExpertGrain>(r.Key).Unload())));

    private static async Task BestEffort(Task call)
    {
        try
        {
            await call.WaitAsync(WarmTimeout);
        }
        catch (Exception)
        {
            // The grain's silo is gone: there is nothing to stop there.
        }
    }

    private void Record(MoeFailureEvent failure)
    {
        State.Events.Add(failure);
        if (State.Events.Count > EventsKept)
        {
            State.Events.RemoveRange(0, State.Events.Count - EventsKept);
        }

        Changed();
    }

    private DeploymentStatus StatusNow() =>
        new(GrainId.Key, State.Spec is null ? DeploymentPhase.NotDeployed : State.Phase, State.Routes?.Epoch ?? 0, State.Routes, _sessions.Count, [.. State.Events], State.LoadTime, State.Problem)
        {
            Rehearsals = _rehearsed,
        };

    private void Changed()
    {
        var previous = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        previous.TrySetResult();
    }

    private async Task WaitChangedAsync(TimeSpan wait)
    {
        if (wait > TimeSpan.Zero)
        {
            await Task.WhenAny(_changed.Task, Task.Delay(wait, time));
        }
    }

    [LoggerMessage(EventId = 7201, Level = LogLevel.Information, Message = "Deployment {Deployment}: {Experts} experts as {Replicas} replicas on {Silos} silos loaded in {Milliseconds:F0} ms")]
    private static partial void LogDeployed(ILogger logger, string deployment, int experts, int replicas, int silos, double milliseconds);

    [LoggerMessage(EventId = 7202, Level = LogLevel.Warning, Message = "Deployment {Deployment}: silo {Silo} lost; {Promoted} shadows promoted in {Milliseconds:F1} ms ({Reason})")]
    private static partial void LogPromoted(ILogger logger, string deployment, string silo, int promoted, double milliseconds, string reason);

    [LoggerMessage(EventId = 7203, Level = LogLevel.Information, Message = "Deployment {Deployment}: {Added} of {Wanted} new shadows loaded, {Milliseconds:F0} ms after the failure")]
    private static partial void LogShadowsAdded(ILogger logger, string deployment, int added, int wanted, double milliseconds);

    [LoggerMessage(EventId = 7204, Level = LogLevel.Information, Message = "Deployment {Deployment}: silo {Silo} still answers; not a failure ({Reason})")]
    private static partial void LogFalseAlarm(ILogger logger, string deployment, string silo, string reason);

    [LoggerMessage(EventId = 7205, Level = LogLevel.Warning, Message = "Deployment {Deployment}: silo {Silo} is dead; restarting everything as epoch {Epoch} ({Reason})")]
    private static partial void LogRestarting(ILogger logger, string deployment, string silo, int epoch, string reason);

    [LoggerMessage(EventId = 7206, Level = LogLevel.Information, Message = "Deployment {Deployment}: epoch {Epoch} ready, {Milliseconds:F0} ms after the failure was reported")]
    private static partial void LogRestarted(ILogger logger, string deployment, int epoch, double milliseconds);

    [LoggerMessage(EventId = 7207, Level = LogLevel.Warning, Message = "Expert replica {Replica} did not load: {Reason}")]
    private static partial void LogWarmFailed(ILogger logger, string replica, string reason);

    [LoggerMessage(EventId = 7208, Level = LogLevel.Warning, Message = "Deployment {Deployment}: a token report was refused: {Reason}")]
    private static partial void LogBadTelemetry(ILogger logger, string deployment, string reason);

    [LoggerMessage(EventId = 7209, Level = LogLevel.Information, Message = "Deployment {Deployment} undeployed: {Sessions} sessions failed, {Replicas} expert replicas unloaded")]
    private static partial void LogUndeployed(ILogger logger, string deployment, int sessions, int replicas);

    [LoggerMessage(EventId = 7211, Level = LogLevel.Warning, Message = "Deployment {Deployment} did not finish deploying: {Reason}")]
    private static partial void LogDeployFailed(ILogger logger, string deployment, string reason);

    [LoggerMessage(EventId = 7212, Level = LogLevel.Information, Message = "Deployment {Deployment} ({Phase}: {Reason}) is deployed again to finish it")]
    private static partial void LogFinishingDeploy(ILogger logger, string deployment, DeploymentPhase phase, string reason);

    [LoggerMessage(EventId = 7213, Level = LogLevel.Information, Message = "Deployment {Deployment}: a session failover rehearsed on {Rehearsed} of {Silos} silos in {Milliseconds:F0} ms")]
    private static partial void LogRehearsed(ILogger logger, string deployment, int rehearsed, int silos, double milliseconds);

    [LoggerMessage(EventId = 7214, Level = LogLevel.Warning, Message = "Deployment {Deployment}: the rehearsal of a session failover on {Silo} failed ({Reason}); its first real one may stall longer")]
    private static partial void LogRehearsalFailed(ILogger logger, string deployment, string silo, string reason);

    [LoggerMessage(EventId = 7210, Level = LogLevel.Warning, Message = "Deployment {Deployment} undeployed, but the dashboard's index of deployments could not be told: {Reason}")]
    private static partial void LogIndexNotUpdated(ILogger logger, string deployment, string reason);
}
