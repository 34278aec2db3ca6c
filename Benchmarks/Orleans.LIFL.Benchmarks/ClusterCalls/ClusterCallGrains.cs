using Orleans.LIFL.Benchmarks.Calls;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Benchmarks.ClusterCalls;

/// <summary>A ping target activated on the silo the first call enters through.</summary>
public interface IClusterPingGrain : IGrainWithIntegerKey
{
    ValueTask<int> Ping(int value);

    Task<string> Silo();
}

[PreferLocalPlacement]
public sealed class ClusterPingGrain : Grain, IClusterPingGrain
{
    public ValueTask<int> Ping(int value) => new(value + 1);

    public Task<string> Silo() => Task.FromResult(GrainContext.Silo.ToString());
}

[GenerateSerializer]
[Immutable]
public sealed record CrossSiloRun(
    [property: Id(0)] double CallsPerSecond,
    [property: Id(1)] double P50Us,
    [property: Id(2)] double P99Us);

/// <summary>Runs, inside a silo, callers of ping grains that live on another silo.</summary>
public interface ICrossSiloDriverGrain : IGrainWithIntegerKey
{
    [ResponseTimeout("00:02:00")]
    Task<CrossSiloRun> Run(long firstTarget, int targets, int callers, TimeSpan duration, int latencyCalls);
}

[PreferLocalPlacement]
public sealed class CrossSiloDriverGrain : Grain, ICrossSiloDriverGrain
{
    public async Task<CrossSiloRun> Run(long firstTarget, int targets, int callers, TimeSpan duration, int latencyCalls)
    {
        var grains = Enumerable.Range(0, targets).Select(i => GrainFactory.GetGrain<IClusterPingGrain>(firstTarget + i)).ToArray();

        // The callers run on the thread pool of this silo (not in this grain's turns): silo-to-silo traffic only.
        var (throughput, latency) = await Task.Run(async () =>
        {
            await CallWorkload.MeasureThroughputAsync((t, v) => grains[t].Ping(v), targets, callers, TimeSpan.FromSeconds(2), CancellationToken.None);
            var calls = await CallWorkload.MeasureThroughputAsync((t, v) => grains[t].Ping(v), targets, callers, duration, CancellationToken.None);
            var sequential = latencyCalls > 0
                ? await CallWorkload.MeasureLatencyAsync((t, v) => grains[t].Ping(v), targets, latencyCalls, latencyCalls / 10, CancellationToken.None)
                : null;
            return (calls, sequential);
        });
        return new CrossSiloRun(throughput, latency?.P50Us ?? 0, latency?.P99Us ?? 0);
    }
}
