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

/// <summary>What the dashboard's endpoints return, read from the silo that serves it.</summary>
public sealed class DashboardSnapshots(ILocalSiloDetails silo, IClusterResources resources, INodeDataplane dataplane)
{
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
}
