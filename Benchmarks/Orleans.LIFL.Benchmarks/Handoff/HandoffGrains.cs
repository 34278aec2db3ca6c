using System.Diagnostics;
using System.IO.Hashing;
using Orleans.LIFL.Benchmarks.Calls;
using Orleans.LIFL.Benchmarks.ClusterCalls;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Benchmarks.Handoff;

/// <summary>Takes buffers on the silo it lives on (its key is that silo's address), saying when each arrived.</summary>
public interface IHandoffReceiverGrain : IGrainWithStringKey
{
    /// <summary>The <see cref="Stopwatch"/> timestamp at which this grain had the buffer (the clock is the machine's, shared by its processes).</summary>
    [ResponseTimeout("00:05:00")]
    ValueTask<long> Take(SharedBuffer buffer);

    /// <summary>A checksum of the bytes that arrived.</summary>
    [ResponseTimeout("00:05:00")]
    Task<ulong> Check(SharedBuffer buffer);

    Task<HandoffSilo> Describe();
}

[GenerateSerializer]
[Immutable]
public sealed record HandoffSilo(
    [property: Id(0)] string Silo,
    [property: Id(1)] string Pool,
    [property: Id(2)] bool EbpfActive,
    [property: Id(3)] string? EbpfUnavailableReason,
    [property: Id(4)] long BytesCopied,
    [property: Id(5)] long BytesHandedOff);

[PreferLocalPlacement]
public sealed class HandoffReceiverGrain(SharedBufferPool pool, INodeDataplane dataplane) : Grain, IHandoffReceiverGrain
{
    public ValueTask<long> Take(SharedBuffer buffer)
    {
        var arrived = Stopwatch.GetTimestamp();
        buffer.Dispose();
        return new ValueTask<long>(arrived);
    }

    public Task<ulong> Check(SharedBuffer buffer)
    {
        using (buffer)
        {
            return Task.FromResult(XxHash3.HashToUInt64(buffer.Span));
        }
    }

    public Task<HandoffSilo> Describe()
    {
        var stats = pool.GetStatistics();
        return Task.FromResult(new HandoffSilo(GrainContext.Silo.ToString(), pool.Name, dataplane.EbpfActive, dataplane.EbpfUnavailableReason,
            stats.BytesCopied, stats.BytesHandedOff));
    }
}

/// <summary>One size handed over and over: one-way times (sent → the receiver has it) and round trips, in µs.</summary>
[GenerateSerializer]
[Immutable]
public sealed record HandoffRun(
    [property: Id(0)] int Length,
    [property: Id(1)] int Repetitions,
    [property: Id(2)] double OneWayP50Us,
    [property: Id(3)] double OneWayP99Us,
    [property: Id(4)] double OneWayMinUs,
    [property: Id(5)] double RoundTripP50Us,
    [property: Id(6)] bool Intact);

/// <summary>Runs, inside the silo it lives on, hand-offs to a receiver grain on another silo and small-call latencies.</summary>
public interface IHandoffDriverGrain : IGrainWithStringKey
{
    [ResponseTimeout("00:10:00")]
    Task<HandoffRun> HandOff(string receiver, int length, int repetitions);

    /// <summary>Sequential ping calls to grains living on another silo (activated there beforehand).</summary>
    [ResponseTimeout("00:05:00")]
    Task<LatencyDistribution> Latency(long firstTarget, int targets, int calls);
}

[PreferLocalPlacement]
public sealed class HandoffDriverGrain(SharedBufferPool pool) : Grain, IHandoffDriverGrain
{
    public async Task<HandoffRun> HandOff(string receiver, int length, int repetitions)
    {
        var target = GrainFactory.GetGrain<IHandoffReceiverGrain>(receiver);
        using var buffer = pool.Rent(length);
        Random.Shared.NextBytes(buffer.Span); // every page written once, outside the timing
        var intact = await target.Check(buffer) == XxHash3.HashToUInt64(buffer.Span);
        await target.Take(buffer); // warm: the receiver's block of this size, the JIT

        var oneWay = new double[repetitions];
        var roundTrip = new double[repetitions];
        for (var i = 0; i < repetitions; i++)
        {
            var sent = Stopwatch.GetTimestamp();
            var arrived = await target.Take(buffer);
            var answered = Stopwatch.GetTimestamp();
            oneWay[i] = Microseconds(arrived - sent);
            roundTrip[i] = Microseconds(answered - sent);
        }

        Array.Sort(oneWay);
        Array.Sort(roundTrip);
        return new HandoffRun(length, repetitions, Percentile(oneWay, 0.5), Percentile(oneWay, 0.99), oneWay[0], Percentile(roundTrip, 0.5), intact);
    }

    public Task<LatencyDistribution> Latency(long firstTarget, int targets, int calls)
    {
        var grains = Enumerable.Range(0, targets).Select(i => GrainFactory.GetGrain<IClusterPingGrain>(firstTarget + i)).ToArray();

        // On the thread pool of this silo, not in this grain's turns: silo-to-silo traffic only.
        return Task.Run(() => CallWorkload.MeasureLatencyAsync((t, v) => grains[t].Ping(v), targets, calls, calls / 10, CancellationToken.None));
    }

    private static double Microseconds(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;

    private static double Percentile(double[] sorted, double quantile) => sorted[(int)Math.Min(sorted.Length - 1, Math.Round(quantile * (sorted.Length - 1)))];
}
