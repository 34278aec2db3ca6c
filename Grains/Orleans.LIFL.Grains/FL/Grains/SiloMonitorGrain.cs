using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Diagnostics;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL;

/// <summary>
/// A silo's resource figures for a job's round metrics: CPU seconds, peak memory, bytes copied and handed off. One
/// per silo, placed there by its key ("node/silo/monitor", see <see cref="LocalityAwarePlacement"/>).
/// </summary>
public interface ISiloMonitorGrain : IGrainWithStringKey
{
    /// <summary>The figures now; with <paramref name="resetPeak"/>, the peak memory starts anew from here.</summary>
    [AlwaysInterleave]
    Task<SiloSample> Sample(bool resetPeak);
}

/// <param name="Process">The silo's process ("node/pid"): silos of one process share its CPU time, memory and pool counters, to be counted once.</param>
/// <param name="PoolUsedBytes">What the node's shared pool holds now (every process of the node).</param>
[GenerateSerializer]
[Immutable]
public sealed record SiloSample(
    [property: Id(6)] string Process,
    [property: Id(0)] string Silo,
    [property: Id(1)] double CpuSeconds,
    [property: Id(2)] long PeakResidentBytes,
    [property: Id(3)] long BytesCopied,
    [property: Id(4)] long BytesHandedOff,
    [property: Id(5)] long PoolUsedBytes);

[LocalityAwarePlacement]
public sealed class SiloMonitorGrain(SharedBufferPool pool, IClusterResources resources) : Grain, ISiloMonitorGrain
{
    public Task<SiloSample> Sample(bool resetPeak)
    {
        if (resetPeak)
        {
            ProcessResources.ResetPeak();
        }

        var stats = pool.GetStatistics();
        var node = resources.ActiveSilos().FirstOrDefault(s => s.Silo.Equals(resources.LocalSilo)).Statistics?.NodeId ?? "";
        return Task.FromResult(new SiloSample($"{node}/{Environment.ProcessId}", GrainContext.Silo.ToString(), ProcessResources.CpuSeconds(), ProcessResources.PeakResidentBytes(),
            stats.BytesCopied, stats.BytesHandedOff, stats.UsedBytes));
    }
}
