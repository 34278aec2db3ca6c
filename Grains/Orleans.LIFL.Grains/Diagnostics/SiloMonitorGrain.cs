using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Diagnostics;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.Diagnostics;

/// <summary>
/// A silo's figures, one grain per silo, pinned there by its key (<see cref="SiloMonitors.Key"/>, see
/// <see cref="SiloPinnedPlacement"/>): its resources for an FL job's round metrics (CPU seconds, peak memory, bytes
/// copied and handed off), and its calls and activations for the dashboard.
/// </summary>
public interface ISiloMonitorGrain : IGrainWithStringKey
{
    /// <summary>The figures now; with <paramref name="resetPeak"/>, the peak memory starts anew from here.</summary>
    [AlwaysInterleave]
    Task<SiloSample> Sample(bool resetPeak);

    /// <summary>The calls the silo's activations ran (in total and per method) and its activations per grain type.</summary>
    [AlwaysInterleave]
    [ReadOnly]
    Task<SiloReport> Report();
}

public static class SiloMonitors
{
    public static string Key(string node, string silo) => LocalityAwarePlacement.Key(node, silo, "monitor");
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


/// <summary>One grain method's calls on a silo.</summary>
[GenerateSerializer]
[Immutable]
public sealed record MethodCallReport(
    [property: Id(0)] string GrainType,
    [property: Id(1)] string Method,
    [property: Id(2)] long Calls,
    [property: Id(3)] long Errors,
    [property: Id(4)] double P50Ms,
    [property: Id(5)] double P99Ms);

/// <summary>What a silo ran and holds: its calls (in total and per method) and its activations per grain type.</summary>
[GenerateSerializer]
[Immutable]
public sealed record SiloReport(
    [property: Id(0)] string Silo,
    [property: Id(1)] DateTime AtUtc,
    [property: Id(2)] long Calls,
    [property: Id(3)] long Errors,
    [property: Id(4)] double P50Ms,
    [property: Id(5)] double P99Ms,
    [property: Id(6)] MethodCallReport[] Methods,
    [property: Id(7)] Dictionary<string, int> ActivationsByType);

[SiloPinnedPlacement]
public sealed class SiloMonitorGrain(SharedBufferPool pool, IClusterResources resources, ISiloDiagnostics diagnostics) : Grain, ISiloMonitorGrain
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

    public Task<SiloReport> Report()
    {
        var snapshot = diagnostics.Calls();
        var activations = new Dictionary<string, int>(diagnostics.ActivationsByType(), StringComparer.Ordinal);
        return Task.FromResult(new SiloReport(
            GrainContext.Silo.ToString(),
            snapshot.AtUtc,
            snapshot.Calls,
            snapshot.Errors,
            snapshot.P50Ms,
            snapshot.P99Ms,
            [.. snapshot.Methods.Select(m => new MethodCallReport(m.GrainType, m.Method, m.Calls, m.Errors, m.P50Ms, m.P99Ms))],
            activations));
    }
}
