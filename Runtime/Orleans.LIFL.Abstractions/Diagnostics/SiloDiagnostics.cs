namespace Orleans.LIFL.Diagnostics;

/// <summary>One grain method's calls on one silo since it started: count, errors and latency percentiles.</summary>
/// <param name="GrainType">The grain type's name.</param>
/// <param name="Method">"IInterface.Method".</param>
/// <param name="P50Ms">Upper bound of the latency bucket holding the median (buckets grow by √2).</param>
public sealed record MethodCallSnapshot(string GrainType, string Method, long Calls, long Errors, double P50Ms, double P99Ms);

/// <summary>What a silo's activations ran: per grain type and method, and in total.</summary>
public sealed record CallStatisticsSnapshot(DateTime AtUtc, long Calls, long Errors, double P50Ms, double P99Ms, IReadOnlyList<MethodCallSnapshot> Methods);

/// <summary>A silo's grain call statistics and activations (the dashboard reads them).</summary>
public interface ISiloDiagnostics
{
    /// <summary>The calls this silo's activations ran since it started, per grain type and method.</summary>
    CallStatisticsSnapshot Calls();

    /// <summary>This silo's activations now, per grain type.</summary>
    IReadOnlyDictionary<string, int> ActivationsByType();
}
