using System.Collections.Concurrent;
using Orleans.LIFL.Diagnostics;
using Orleans.LIFL.Invocation;

namespace Orleans.LIFL.Runtime.Diagnostics;

/// <summary>
/// Counts and latency histograms of the calls a runtime's activations ran, per (grain type, method). The latency is from
/// the activation starting the call to its completion; buckets grow by a factor of √2 from 1 µs, so a percentile is
/// known within 41%. Recording takes no lock.
/// </summary>
internal sealed class GrainCallStatistics
{
    private const int Buckets = 64;
    private readonly ConcurrentDictionary<(GrainType Type, MethodDescriptor Method), Histogram> _methods = new();

    public void Record(GrainType type, MethodDescriptor method, TimeSpan elapsed, bool failed) =>
        _methods.GetOrAdd((type, method), static _ => new Histogram()).Record(elapsed, failed);

    public CallStatisticsSnapshot Snapshot()
    {
        var total = new long[Buckets];
        var methods = new List<MethodCallSnapshot>();
        long calls = 0, errors = 0;
        foreach (var ((type, method), histogram) in _methods)
        {
            var counts = histogram.Counts();
            var (methodCalls, methodErrors) = (counts.Sum(), histogram.Errors);
            for (var i = 0; i < Buckets; i++)
            {
                total[i] += counts[i];
            }

            calls += methodCalls;
            errors += methodErrors;
            methods.Add(new MethodCallSnapshot(type.ToString(), method.FullName, methodCalls, methodErrors, Percentile(counts, 0.50), Percentile(counts, 0.99)));
        }

        methods.Sort((a, b) => b.Calls.CompareTo(a.Calls));
        return new CallStatisticsSnapshot(DateTime.UtcNow, calls, errors, Percentile(total, 0.50), Percentile(total, 0.99), methods);
    }

    /// <summary>The upper bound (ms) of the bucket holding the <paramref name="quantile"/>; 0 with no calls.</summary>
    internal static double Percentile(long[] counts, double quantile)
    {
        var total = counts.Sum();
        if (total == 0)
        {
            return 0;
        }

        var rank = (long)Math.Ceiling(quantile * total);
        long seen = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            seen += counts[i];
            if (seen >= rank)
            {
                return UpperBoundMicroseconds(i) / 1000;
            }
        }

        return UpperBoundMicroseconds(counts.Length - 1) / 1000;
    }

    internal static double UpperBoundMicroseconds(int bucket) => Math.Pow(2, (bucket + 1) / 2.0);

    internal static int BucketOf(TimeSpan elapsed)
    {
        var microseconds = Math.Max(elapsed.TotalMicroseconds, 1);
        return Math.Clamp((int)Math.Ceiling(2 * Math.Log2(microseconds)) - 1, 0, Buckets - 1);
    }

    private sealed class Histogram
    {
        private readonly long[] _counts = new long[Buckets];
        private long _errors;

        public long Errors => Volatile.Read(ref _errors);

        public void Record(TimeSpan elapsed, bool failed)
        {
            Interlocked.Increment(ref _counts[BucketOf(elapsed)]);
            if (failed)
            {
                Interlocked.Increment(ref _errors);
            }
        }

        public long[] Counts()
        {
            var copy = new long[Buckets];
            for (var i = 0; i < Buckets; i++)
            {
                copy[i] = Volatile.Read(ref _counts[i]);
            }

            return copy;
        }
    }
}

/// <summary>The silo's diagnostics as grains and host code read them.</summary>
internal sealed class SiloDiagnostics(Core.Silo silo) : ISiloDiagnostics
{
    public CallStatisticsSnapshot Calls() => silo.Statistics.Calls.Snapshot();

    public IReadOnlyDictionary<string, int> ActivationsByType() =>
        silo.Catalog.Enumerate().GroupBy(a => a.GrainId.Type.ToString(), StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
}
