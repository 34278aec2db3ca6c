using System.Diagnostics;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Benchmarks.Calls;

/// <summary>A call to target number <c>target</c> with an argument; returns the reply.</summary>
public delegate ValueTask<int> TargetCall(int target, int value);

/// <summary>A first call to a target that does not exist yet (the key has never been used).</summary>
public delegate ValueTask<int> FreshTargetCall(long key);

/// <summary>Latencies of one sequential caller, in microseconds.</summary>
[GenerateSerializer]
[Immutable]
public sealed record LatencyDistribution(
    [property: Id(0)] int Calls,
    [property: Id(1)] double MeanUs,
    [property: Id(2)] double P50Us,
    [property: Id(3)] double P90Us,
    [property: Id(4)] double P99Us,
    [property: Id(5)] double MaxUs);

/// <summary>
/// The measurements of the calls benchmark, written once against a call delegate so that the runtime and the
/// baseline are driven by exactly the same loops.
/// </summary>
public static class CallWorkload
{
    /// <summary>Calls per second of <paramref name="callers"/> concurrent callers, each calling the targets in turn
    /// (starting at different ones) and awaiting each reply before the next call, for <paramref name="duration"/>.</summary>
    public static async Task<double> MeasureThroughputAsync(TargetCall call, int targets, int callers, TimeSpan duration, CancellationToken cancellationToken)
    {
        var stop = new StopSignal();
        var stopwatch = Stopwatch.StartNew();
        var loops = new Task<long>[callers];
        for (var caller = 0; caller < callers; caller++)
        {
            var first = (int)((long)caller * targets / callers);
            loops[caller] = Task.Run(() => CallInTurnAsync(call, targets, first, stop), cancellationToken);
        }

        try
        {
            await Task.Delay(duration, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Stop the callers and let them finish their last call before reporting the cancellation.
        }

        stop.Stopped = true;
        var counts = await Task.WhenAll(loops);
        stopwatch.Stop();
        cancellationToken.ThrowIfCancellationRequested();
        return counts.Sum() / stopwatch.Elapsed.TotalSeconds;
    }

    private static async Task<long> CallInTurnAsync(TargetCall call, int targets, int first, StopSignal stop)
    {
        long calls = 0;
        var target = first;
        while (!stop.Stopped)
        {
            await call(target, (int)calls);
            calls++;
            if (++target == targets)
            {
                target = 0;
            }
        }

        return calls;
    }

    /// <summary>Latency of each of <paramref name="calls"/> calls made one after the other by one caller, after
    /// <paramref name="warmupCalls"/> unrecorded ones.</summary>
    public static async Task<LatencyDistribution> MeasureLatencyAsync(TargetCall call, int targets, int calls, int warmupCalls, CancellationToken cancellationToken)
    {
        for (var i = 0; i < warmupCalls; i++)
        {
            await call(i % targets, i);
        }

        var samples = new long[calls];
        for (var i = 0; i < calls; i++)
        {
            if ((i & 0xFFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            var started = Stopwatch.GetTimestamp();
            await call(i % targets, i);
            samples[i] = Stopwatch.GetTimestamp() - started;
        }

        Array.Sort(samples);
        var ticksPerUs = Stopwatch.Frequency / 1_000_000.0;
        double Percentile(double p) => samples[Math.Min(calls - 1, (int)(calls * p))] / ticksPerUs;
        return new LatencyDistribution(
            calls,
            samples.Average() / ticksPerUs,
            Percentile(0.50),
            Percentile(0.90),
            Percentile(0.99),
            samples[^1] / ticksPerUs);
    }

    /// <summary>First calls per second to <paramref name="count"/> targets that did not exist, made by
    /// <paramref name="callers"/> concurrent callers taking the next unused key.</summary>
    public static async Task<double> MeasureCreationAsync(FreshTargetCall call, long firstKey, int count, int callers, CancellationToken cancellationToken)
    {
        var next = -1L;
        async Task CreateAsync()
        {
            long index;
            while ((index = Interlocked.Increment(ref next)) < count)
            {
                await call(firstKey + index);
            }
        }

        var stopwatch = Stopwatch.StartNew();
        var loops = new Task[callers];
        for (var caller = 0; caller < callers; caller++)
        {
            loops[caller] = Task.Run(CreateAsync, cancellationToken);
        }

        await Task.WhenAll(loops);
        stopwatch.Stop();
        return count / stopwatch.Elapsed.TotalSeconds;
    }

    private sealed class StopSignal
    {
        private volatile bool _stopped;

        public bool Stopped
        {
            get => _stopped;
            set => _stopped = value;
        }
    }
}
