using Orleans.LIFL.Grains.Diagnostics;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Grains.Index;
using Orleans.LIFL.Grains.MoE;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime;
using Orleans.LIFL.Runtime.Dataplane;

namespace Orleans.LIFL.Dashboard;

/// <summary>One silo as the cluster view shows it.</summary>
/// <param name="Status">The membership status, lower case: active, joining, shuttingdown, dead…</param>
/// <param name="Cpu">CPU use in percent, as the silo last reported it (null for a silo not active or not heard from).</param>
/// <param name="CallsPerSecond">Calls its activations completed per second since the dashboard's previous read (null on the first).</param>
/// <param name="ErrorRate">The share of those calls that failed.</param>
public sealed record SiloView(
    string Address,
    string Name,
    string Status,
    double? Cpu,
    double? MemoryMb,
    int? Activations,
    string? Node,
    DateTime StartTimeUtc,
    long? Calls = null,
    long? Errors = null,
    double? CallsPerSecond = null,
    double? ErrorRate = null,
    double? LatencyP50Ms = null,
    double? LatencyP99Ms = null,
    IReadOnlyDictionary<string, int>? ActivationsByType = null);

/// <summary>A grain method over the whole cluster: calls and errors summed over the silos, latency of the slowest silo.</summary>
public sealed record GrainMethodView(string GrainType, string Method, long Calls, long Errors, double P50Ms, double P99Ms);

/// <summary>A silo's membership changed: it joined, or its status moved (to dead, say).</summary>
public sealed record MembershipEventView(DateTime AtUtc, string Silo, string Name, string? From, string To);

public sealed record ClusterViewSnapshot(
    DateTime AtUtc, string Silo, IReadOnlyList<SiloView> Silos, IReadOnlyList<GrainMethodView> GrainMethods, IReadOnlyList<MembershipEventView> MembershipEvents);

public sealed record DataplaneSnapshot(
    string Node,
    string Pool,
    bool PoolAttached,
    long CapacityBytes,
    long UsedBytes,
    long ResidentBytes,
    long LiveBuffers,
    int AttachedProcesses,
    long BytesCopied,
    long BytesHandedOff,
    long HandOffs,
    bool EbpfActive,
    string? EbpfUnavailableReason,
    long? EbpfMessagesRedirected);

/// <summary>A silo's share of a deployment's experts, and whether the silo is alive.</summary>
public sealed record ExpertSiloView(string Silo, string Status, int Primaries, int Shadows);

/// <summary>
/// A failure the deployment handled; <paramref name="RecoveryMs"/> is from the report to the table (or restart) being
/// ready, <paramref name="StallMs"/> the longest gap between tokens around it (as sessions and clients saw it), and
/// <paramref name="Resume"/> its phases when it was a client's wait for the request's next incarnation.
/// </summary>
public sealed record MoeFailureView(
    DateTime AtUtc, string Silo, string Kind, string Detail, int PromotedExperts, int NewShadows, double RecoveryMs, int Epoch, double? StallMs,
    SessionResume? Resume);

/// <summary>One second of a deployment's decoding: <paramref name="T"/> is its start in Unix seconds.</summary>
public sealed record MoeSecondView(long T, int TokensPerSecond, double TbtP50Ms, double TbtP99Ms, double TbtMaxMs);

public sealed record MoeDeploymentView(
    string Deployment,
    string Phase,
    int Epoch,
    long RoutesVersion,
    int ActiveSessions,
    double LoadMs,
    IReadOnlyList<ExpertSiloView> ExpertSilos,
    IReadOnlyList<MoeFailureView> Events,
    IReadOnlyList<MoeSessionView> Sessions,
    IReadOnlyList<MoeSecondView> Series,
    string? Problem);

/// <summary>A workload the dashboard could not read (its grain failed or did not answer in time).</summary>
public sealed record UnreadableWorkload(string Name, string Error);

/// <summary>
/// What the dashboard's endpoints return, read from the silo that serves it. The server samples the cluster once per
/// refresh period (<see cref="Latest"/>), which every event stream shares; <c>/api/cluster</c> reads afresh.
/// </summary>
public sealed class DashboardSnapshots(
    ILocalSiloDetails silo, IClusterResources resources, INodeDataplane dataplane, IGrainFactory grains, Microsoft.Extensions.Options.IOptions<DashboardOptions> options)
{
    /// <summary>How long one workload's grain may take to answer before the dashboard shows it as unreadable.</summary>
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(3);

    /// <summary>Membership events kept for the view (the newest).</summary>
    private const int EventsKept = 200;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, string> _statuses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Calls, long Errors, DateTime At)> _previousCalls = new(StringComparer.Ordinal);
    private readonly List<MembershipEventView> _events = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[]> _names = new(StringComparer.Ordinal);
    private ClusterViewSnapshot? _latest;

    /// <summary>The newest cluster snapshot taken (by the server's sampler or a reader); null before the first.</summary>
    public ClusterViewSnapshot? Latest
    {
        get
        {
            lock (_lock)
            {
                return _latest;
            }
        }
    }

    /// <summary>
    /// Every silo of the membership table with its figures (each active silo's own report: calls, errors, latency,
    /// activations per grain type; rates over at least half a refresh period), the grain methods over the cluster, and
    /// the membership events seen.
    /// </summary>
    public async Task<ClusterViewSnapshot> ClusterAsync()
    {
        var statistics = resources.ActiveSilos().ToDictionary(s => s.Silo, s => s.Statistics);
        var members = silo.Members;
        var reports = await Task.WhenAll(statistics.Select(async s =>
        {
            try
            {
                return await grains.GetGrain<ISiloMonitorGrain>(SiloMonitors.Key(s.Value?.NodeId ?? "", s.Key.ToString())).Report().WaitAsync(ReadTimeout);
            }
            catch (Exception)
            {
                return null; // A silo that does not answer now shows without call figures.
            }
        }));
        var bySilo = reports.OfType<SiloReport>().ToDictionary(r => r.Silo, StringComparer.Ordinal);
        var now = DateTime.UtcNow;
        lock (_lock)
        {
            var silos = members.Select(m =>
            {
                var address = m.Silo.ToString();
                var figures = statistics.GetValueOrDefault(m.Silo);
                var status = m.Status.ToString().ToLowerInvariant();
                RecordTransition(now, m, address, status);
                var view = new SiloView(
                    address, m.SiloName, status, figures?.CpuUsagePercent, figures is null ? null : Math.Round(figures.MemoryUsageBytes / 1e6, 1),
                    figures?.ActivationCount, figures?.NodeId, m.StartTime);
                if (bySilo.TryGetValue(address, out var report))
                {
                    double? rate = null;
                    double? errorRate = null;
                    var known = _previousCalls.TryGetValue(address, out var previous) && report.AtUtc > previous.At && report.Calls >= previous.Calls;
                    if (known)
                    {
                        var calls = report.Calls - previous.Calls;
                        rate = Math.Round(calls / (report.AtUtc - previous.At).TotalSeconds, 1);
                        errorRate = calls == 0 ? 0 : Math.Round((double)(report.Errors - previous.Errors) / calls, 4);
                    }

                    // Reads closer together than half a refresh period rate against the same earlier sample (no jittery rates from two readers).
                    if (!known || report.AtUtc - previous.At >= options.Value.RefreshPeriod / 2)
                    {
                        _previousCalls[address] = (report.Calls, report.Errors, report.AtUtc);
                    }
                    view = view with
                    {
                        Calls = report.Calls,
                        Errors = report.Errors,
                        CallsPerSecond = rate,
                        ErrorRate = errorRate,
                        LatencyP50Ms = report.P50Ms,
                        LatencyP99Ms = report.P99Ms,
                        ActivationsByType = report.ActivationsByType,
                    };
                }

                return view;
            }).ToList();
            var methods = bySilo.Values.SelectMany(r => r.Methods)
                .GroupBy(m => (m.GrainType, m.Method))
                .Select(g => new GrainMethodView(g.Key.GrainType, g.Key.Method, g.Sum(m => m.Calls), g.Sum(m => m.Errors), g.Max(m => m.P50Ms), g.Max(m => m.P99Ms)))
                .OrderByDescending(m => m.Calls)
                .ToList();
            var snapshot = new ClusterViewSnapshot(now, silo.SiloAddress.ToString(), silos, methods, [.. _events]);
            if (_latest is null || snapshot.AtUtc >= _latest.AtUtc)
            {
                _latest = snapshot;
            }

            return snapshot;
        }
    }

    private void RecordTransition(DateTime now, Runtime.MembershipService.MembershipEntry member, string address, string status)
    {
        var known = _statuses.TryGetValue(address, out var before);
        if (known && before == status)
        {
            return;
        }

        _statuses[address] = status;
        // A silo first seen is reported as having joined when it started; later changes when the dashboard saw them.
        _events.Add(known ? new MembershipEventView(now, address, member.SiloName, before, status) : new MembershipEventView(member.StartTime, address, member.SiloName, null, status));
        if (_events.Count > EventsKept)
        {
            _events.RemoveRange(0, _events.Count - EventsKept);
        }
    }

    public DataplaneSnapshot Dataplane()
    {
        var pool = dataplane.Pool?.GetStatistics();
        return new DataplaneSnapshot(
            dataplane.NodeId,
            dataplane.PoolName,
            pool is not null,
            pool?.CapacityBytes ?? 0,
            pool?.UsedBytes ?? 0,
            pool?.ResidentBytes ?? 0,
            pool?.LiveBuffers ?? 0,
            pool?.AttachedProcesses ?? 0,
            pool?.BytesCopied ?? 0,
            pool?.BytesHandedOff ?? 0,
            pool?.HandOffs ?? 0,
            dataplane.EbpfActive,
            dataplane.EbpfUnavailableReason,
            dataplane.GetEbpfStatistics()?.MessagesRedirected);
    }

    /// <summary>Every FL job's status (rounds with their times, accepted and refused updates, the aggregators and their silos).</summary>
    public Task<List<object>> FlJobsAsync() =>
        ReadAllAsync(WorkloadIndexes.FlJobs, async name => (object)await grains.GetGrain<IFlJobGrain>(name).Status());

    /// <summary>
    /// Every MoE deployment: its phase, where its experts and shadows run and whether those silos live, its failures with
    /// their stalls, its recent requests and its tokens and time between tokens second by second.
    /// </summary>
    public Task<List<object>> MoeAsync()
    {
        var statuses = silo.Members.ToDictionary(m => m.Silo.ToString(), m => m.Status.ToString().ToLowerInvariant(), StringComparer.Ordinal);
        return ReadAllAsync(WorkloadIndexes.MoeDeployments, async name =>
        {
            var deployment = grains.GetGrain<IMoeDeploymentGrain>(name);
            var status = await deployment.Status();
            var telemetry = await deployment.Telemetry();
            var rows = status.Routes?.Candidates ?? [];
            var perSilo = rows.SelectMany(c => c.Select((replica, rank) => (replica.Silo, Primary: rank == 0)))
                .GroupBy(r => r.Silo, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new ExpertSiloView(g.Key, statuses.GetValueOrDefault(g.Key, "unknown"), g.Count(r => r.Primary), g.Count(r => !r.Primary)))
                .ToList();
            return (object)new MoeDeploymentView(
                status.Deployment, status.Phase.ToString().ToLowerInvariant(), status.Epoch, status.Routes?.Version ?? 0, status.Sessions,
                Math.Round(status.LoadTime.TotalMilliseconds, 1), perSilo,
                [.. status.Events.Select(e => (Event: e, Stall: telemetry.Stalls.FirstOrDefault(s => s.Describes(e)))).Select(p => new MoeFailureView(
                    p.Event.AtUtc, p.Event.Silo, p.Event.Kind, p.Event.Detail, p.Event.PromotedExperts, p.Event.NewShadows,
                    Math.Round(p.Event.RecoveryTime.TotalMilliseconds, 1), p.Event.Epoch, p.Stall?.StallMs, p.Stall?.Resume))],
                telemetry.Sessions,
                [.. telemetry.Series.Select(s => new MoeSecondView(s.Second, s.Tokens, s.TbtP50Ms, s.TbtP99Ms, s.MaxGapMs))],
                status.Problem);
        });
    }

    /// <summary>
    /// Reads every workload of <paramref name="index"/>. While the index cannot be read (its silo just died and the
    /// cluster has not declared it dead yet) the names it last gave are used, so the workloads stay on screen.
    /// </summary>
    private async Task<List<object>> ReadAllAsync(string index, Func<string, Task<object>> read)
    {
        string[] names;
        try
        {
            names = await grains.GetGrain<IWorkloadIndexGrain>(index).List().WaitAsync(ReadTimeout);
            _names[index] = names;
        }
        catch (Exception error)
        {
            if (!_names.TryGetValue(index, out var known))
            {
                return [new UnreadableWorkload(index, $"{error.GetType().Name}: {error.Message}")];
            }

            names = known;
        }

        var results = await Task.WhenAll(names.Select(async name =>
        {
            try
            {
                return await read(name).WaitAsync(ReadTimeout);
            }
            catch (Exception error)
            {
                return new UnreadableWorkload(name, $"{error.GetType().Name}: {error.Message}");
            }
        }));
        return [.. results];
    }
}
