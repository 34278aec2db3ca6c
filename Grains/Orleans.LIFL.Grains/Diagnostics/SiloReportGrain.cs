using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Diagnostics;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.Diagnostics;

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

/// <summary>
/// One per silo (its key names the silo, see <see cref="LocalityAwarePlacement"/>): reports that silo's call
/// statistics and activations, so that a dashboard on any silo shows the whole cluster.
/// </summary>
public interface ISiloReportGrain : IGrainWithStringKey
{
    [AlwaysInterleave]
    [ReadOnly]
    Task<SiloReport> Report();
}

public static class SiloReports
{
    public static string Key(string node, string silo) => LocalityAwarePlacement.Key(node, silo, "report");
}

[LocalityAwarePlacement]
public sealed class SiloReportGrain(ISiloDiagnostics diagnostics) : Grain, ISiloReportGrain
{
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
