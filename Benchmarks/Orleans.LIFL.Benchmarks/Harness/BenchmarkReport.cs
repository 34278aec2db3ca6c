namespace Orleans.LIFL.Benchmarks.Harness;

/// <summary>Which side of its bound a figure has to be on.</summary>
public enum TargetKind
{
    AtLeast,
    AtMost,
}

/// <summary>The bound a figure is judged against.</summary>
public sealed record BenchmarkTarget(TargetKind Kind, double Bound)
{
    public static BenchmarkTarget AtLeast(double bound) => new(TargetKind.AtLeast, bound);

    public static BenchmarkTarget AtMost(double bound) => new(TargetKind.AtMost, bound);

    public bool IsMetBy(double value) => Kind == TargetKind.AtLeast ? value >= Bound : value <= Bound;
}

/// <summary>One measured figure, with the same figure of the baseline when there is one.</summary>
/// <param name="Key">The JSON key of the figure ("calls_per_second").</param>
/// <param name="ShortName">The short name used in the JSON ratio key ("calls" gives "ratio_calls_to_baseline").</param>
/// <param name="Title">The figure as the table names it.</param>
/// <param name="LowerIsBetter">True for latencies: then a ratio below 1 means we are faster than the baseline.</param>
public sealed record BenchmarkFigure(
    string Key,
    string ShortName,
    string Title,
    string Unit,
    double Value,
    double? Baseline,
    BenchmarkTarget? Target,
    bool LowerIsBetter = false)
{
    /// <summary>Ours divided by the baseline's.</summary>
    public double? Ratio => Baseline is > 0 ? Value / Baseline.Value : null;

    /// <summary>Null when the figure has no target.</summary>
    public bool? Passed => Target?.IsMetBy(Value);
}

/// <summary>What a benchmark run measured.</summary>
public sealed class BenchmarkReport
{
    public required string Benchmark { get; init; }

    public required bool Quick { get; init; }

    public required IReadOnlyList<BenchmarkFigure> Figures { get; init; }

    /// <summary>How the figures were obtained (method, sizes, what the baseline is), one sentence each.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>
    /// Further top-level JSON members a benchmark promises beside its figures (for example figures by size as one
    /// object: "descriptor_us": {"1KB": ..}); written as they are, after the figures.
    /// </summary>
    public IReadOnlyDictionary<string, object> Extras { get; init; } = new Dictionary<string, object>();

    /// <summary>Raw measurements (each round, each percentile) for the JSON report, by key.</summary>
    public IReadOnlyDictionary<string, object> Details { get; init; } = new Dictionary<string, object>();

    /// <summary>Wall-clock time of the whole run, warm-up and baseline included.</summary>
    public TimeSpan Duration { get; init; }

    /// <summary>True when every figure that has a target meets it.</summary>
    public bool Passed => Figures.All(f => f.Passed != false);
}
