namespace Orleans.LIFL.Benchmarks.Harness;

/// <summary>One benchmark behind <c>lifl bench NAME</c>: it measures our figures and a baseline in the same run.</summary>
public interface IBenchmark
{
    /// <summary>The name on the command line (lower case, no spaces).</summary>
    string Name { get; }

    /// <summary>One line for the list of benchmarks.</summary>
    string Description { get; }

    /// <summary>Runs the benchmark; <paramref name="progress"/> is told of each phase as it starts.</summary>
    Task<BenchmarkReport> RunAsync(BenchmarkOptions options, IProgress<string> progress, CancellationToken cancellationToken);
}

/// <summary>How to run a benchmark.</summary>
/// <param name="Quick">A short run (smaller counts, shorter rounds) to check that the benchmark works; its figures are
/// noisier than those of a normal run.</param>
/// <param name="Clients">Clients to simulate, for benchmarks that take them (null: the benchmark's default).</param>
/// <param name="Parameters">Model parameters, for benchmarks that take them (null: the benchmark's default).</param>
public sealed record BenchmarkOptions(bool Quick, int? Clients = null, int? Parameters = null);
