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
public sealed record SiloView(string Address, string Name, string Status, double? Cpu, double? MemoryMb, int? Activations, string? Node, DateTime StartTimeUtc);

public sealed record ClusterViewSnapshot(DateTime AtUtc, string Silo, IReadOnlyList<SiloView> Silos);

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

public sealed record MoeDeploymentView(
    string Deployment,
    string Phase,
    int Epoch,
    long RoutesVersion,
    int Sessions,
    double LoadMs,
    IReadOnlyList<ExpertSiloView> ExpertSilos,
    IReadOnlyList<MoeFailureEvent> Events);

/// <summary>A workload the dashboard could not read (its grain failed or did not answer in time).</summary>
public sealed record UnreadableWorkload(string Name, string Error);

/// <summary>What the dashboard's endpoints return, read from the silo that serves it.</summary>
public sealed class DashboardSnapshots(ILocalSiloDetails silo, IClusterResources resources, INodeDataplane dataplane, IGrainFactory grains)
{
    /// <summary>How long one workload's grain may take to answer before the dashboard shows it as unreadable.</summary>
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(3);

    public ClusterViewSnapshot Cluster()
    {
        var statistics = resources.ActiveSilos().ToDictionary(s => s.Silo, s => s.Statistics);
        var silos = silo.Members.Select(m =>
        {
            var figures = statistics.GetValueOrDefault(m.Silo);
            return new SiloView(
                m.Silo.ToString(),
                m.SiloName,
                m.Status.ToString().ToLowerInvariant(),
                figures?.CpuUsagePercent,
                figures is null ? null : Math.Round(figures.MemoryUsageBytes / 1e6, 1),
                figures?.ActivationCount,
                figures?.NodeId,
                m.StartTime);
        }).ToList();
        return new ClusterViewSnapshot(DateTime.UtcNow, silo.SiloAddress.ToString(), silos);
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

    /// <summary>Every MoE deployment: its phase, where its experts and shadows run and whether those silos live, its failures.</summary>
    public Task<List<object>> MoeAsync()
    {
        var statuses = silo.Members.ToDictionary(m => m.Silo.ToString(), m => m.Status.ToString().ToLowerInvariant(), StringComparer.Ordinal);
        return ReadAllAsync(WorkloadIndexes.MoeDeployments, async name =>
        {
            var status = await grains.GetGrain<IMoeDeploymentGrain>(name).Status();
            var rows = status.Routes?.Candidates ?? [];
            var perSilo = rows.SelectMany(c => c.Select((replica, rank) => (replica.Silo, Primary: rank == 0)))
                .GroupBy(r => r.Silo, StringComparer.Ordinal)
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new ExpertSiloView(g.Key, statuses.GetValueOrDefault(g.Key, "unknown"), g.Count(r => r.Primary), g.Count(r => !r.Primary)))
                .ToList();
            return (object)new MoeDeploymentView(
                status.Deployment, status.Phase.ToString().ToLowerInvariant(), status.Epoch, status.Routes?.Version ?? 0, status.Sessions,
                Math.Round(status.LoadTime.TotalMilliseconds, 1), perSilo, status.Events);
        });
    }

    private async Task<List<object>> ReadAllAsync(string index, Func<string, Task<object>> read)
    {
        var names = await grains.GetGrain<IWorkloadIndexGrain>(index).List().WaitAsync(ReadTimeout);
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
