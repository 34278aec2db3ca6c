using Orleans.LIFL.Benchmarks.Calls;

namespace Orleans.LIFL.Benchmarks.Harness;

/// <summary>The benchmarks <c>lifl bench</c> knows, by name.</summary>
public static class BenchmarkRegistry
{
    public static IReadOnlyList<IBenchmark> All { get; } = [new CallsBenchmark(), new ClusterCalls.ClusterCallsBenchmark(), new Handoff.HandoffBenchmark(), new Round.RoundBenchmark(), new Aggregate.AggregateBenchmark(), new MoeFailover.MoeFailoverBenchmark()];

    public static bool TryGet(string name, out IBenchmark benchmark)
    {
        ArgumentNullException.ThrowIfNull(name);
        benchmark = All.FirstOrDefault(b => string.Equals(b.Name, name, StringComparison.OrdinalIgnoreCase))!;
        return benchmark is not null;
    }
}
