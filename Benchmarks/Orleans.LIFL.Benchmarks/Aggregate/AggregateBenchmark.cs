using System.Diagnostics;
using Orleans.LIFL.Benchmarks.Harness;
using Orleans.LIFL.Grains.FL.Algorithms;

namespace Orleans.LIFL.Benchmarks.Aggregate;

/// <summary>
/// The FL aggregation kernel (sum += weight · update, <see cref="Grains.FL.Algorithms.AggregationKernels.Accumulate"/>)
/// in GB/s of update consumed, on buffers far beyond the caches, against the fastest plain read of the same memory
/// (the ceiling of the kernel's read of the update) and a scalar loop, all in the same run.
/// </summary>
public sealed class AggregateBenchmark : IBenchmark
{
    public const double RatioToProbeTarget = 0.8;

    /// <summary>ResNet-18's parameter count: the model size of a normal run.</summary>
    public const int ResNet18Parameters = 11_689_512;

    /// <summary>
    /// Updates in the buffers: enough that each pass reads one the previous passes left long evicted from the caches,
    /// and what the kernel folds in one call, as a leaf folds the updates pending together (lazy mode: all of a round's).
    /// </summary>
    public const int Updates = 16;

    /// <summary>Bytes of memory traffic per byte of update one update at a time: it reads the update, reads the sum, writes the sum.</summary>
    public const int KernelTrafficPerUpdateByte = 3;

    /// <summary>Folding all the updates in one call: each update read once, the sum read and written once per call.</summary>
    public const double FusedTrafficPerUpdateByte = 1 + (2.0 / Updates);

    private const float Weight = 1f / Updates;
    private const int Seed = 20_240_611;
    private const double BytesPerGB = 1e9;

    /// <summary>Below this share of a core during the rounds, the report warns that the machine was busy.</summary>
    private const double BusyMachineCpuShare = 0.9;

    public string Name => "aggregate";

    public string Description => $"FL aggregation kernel (sum += Σ w·update, {Updates} updates per call) in GB/s of update read, against a memory-read probe and a scalar loop";

    public Task<BenchmarkReport> RunAsync(BenchmarkOptions options, IProgress<string> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(progress);

        // One thread of its own, as the kernel is single-threaded by design (aggregators scale across cores by count):
        // no thread-pool work item or continuation lands on it between passes.
        var completion = new TaskCompletionSource<BenchmarkReport>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                completion.SetResult(Run(AggregateBenchmarkSizes.For(options), options, progress, cancellationToken));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                completion.SetCanceled(cancellationToken);
            }
            catch (Exception error)
            {
                completion.SetException(error);
            }
        })
        {
            IsBackground = true,
            Name = "lifl bench aggregate",
        };
        thread.Start();
        return completion.Task;
    }

    private BenchmarkReport Run(AggregateBenchmarkSizes sizes, BenchmarkOptions options, IProgress<string> progress, CancellationToken cancellationToken)
    {
        var total = Stopwatch.StartNew();
        var updateMB = (double)sizes.Length * sizeof(float) / 1e6;
        progress.Report($"allocating a sum and {Updates} updates of {sizes.Length:N0} floats ({updateMB:0.0} MB each) in a shared pool, writing every page");
        using var buffers = UpdateBuffers.Allocate(sizes.Length, Updates, Seed);
        var passes = UpdatePasses.Create(Weight);

        foreach (var pass in passes)
        {
            progress.Report($"warm-up, {sizes.Warmup.TotalSeconds:0.#} s: {pass.Description}");
            var warming = Stopwatch.StartNew();
            while (warming.Elapsed < sizes.Warmup)
            {
                cancellationToken.ThrowIfCancellationRequested();
                TimePass(pass, buffers);
            }
        }

        progress.Report($"{sizes.Rounds} rounds: each of the {passes.Count} passes once per round, in rotating order, each over the next update");
        var rounds = passes.ToDictionary(p => p, _ => new List<double>(sizes.Rounds));
        var cpuBefore = Environment.CpuUsage.TotalTime;
        var wall = Stopwatch.StartNew();
        for (var round = 0; round < sizes.Rounds; round++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (var i = 0; i < passes.Count; i++)
            {
                var pass = passes[(round + i) % passes.Count];
                rounds[pass].Add(TimePass(pass, buffers));
            }
        }

        // Near 1 when the thread had a core to itself; on a busy machine a long pass is more often preempted than a short one.
        var cpuShare = (Environment.CpuUsage.TotalTime - cpuBefore) / wall.Elapsed;
        total.Stop();
        return Report(sizes, options, buffers, passes, rounds, cpuShare, total.Elapsed);
    }

    private BenchmarkReport Report(
        AggregateBenchmarkSizes sizes,
        BenchmarkOptions options,
        UpdateBuffers buffers,
        IReadOnlyList<UpdatePass> passes,
        Dictionary<UpdatePass, List<double>> rounds,
        double cpuShare,
        TimeSpan duration)
    {
        var kernelPass = passes.Single(p => p.Role == PassRole.Kernel);
        var singlePass = passes.Single(p => p.Role == PassRole.SingleKernel);
        var scalarPass = passes.Single(p => p.Role == PassRole.Scalar);
        var probes = passes.Where(p => p.Role == PassRole.Probe).ToList();
        var probePass = probes.MaxBy(p => Median(rounds[p]))!;

        var kernel = Median(rounds[kernelPass]);
        var single = Median(rounds[singlePass]);
        var scalar = Median(rounds[scalarPass]);
        var probe = Median(rounds[probePass]);
        var ratio = kernel / probe;
        var kernelTraffic = kernel * FusedTrafficPerUpdateByte;
        var updateMB = (double)sizes.Length * sizeof(float) / 1e6;

        var notes = new List<string>
        {
            $"buffers: one sum of {sizes.Length:N0} floats ({updateMB:0.0} MB{(options.Quick ? "" : ", ResNet-18's parameter count")}) and {Updates} updates as long, {updateMB * (Updates + 1):0} MB in all, in a shared-memory pool of this process (SharedBufferPool '{buffers.PoolName}', /dev/shm), rented as the aggregators rent theirs; every page written before timing; weight {Weight}.",
            $"each timed pass reads the next of the {Updates} updates in turn, so an update was last touched {Updates - 1} passes earlier and comes from memory, not a cache{(options.Quick ? "; quick run: a sum this small may stay in a large last-level cache for the scalar loop, which writes through the caches, so compare quick figures only with each other" : "")}.",
            $"method: one dedicated thread, not bound to a core (on a shared machine the scheduler may then move it off a busy one); each pass run for {sizes.Warmup.TotalSeconds:0.#} s first (JIT tiering), then {sizes.Rounds} rounds of every pass once, in rotating order so drift of the machine's load touches all alike; figure = median over the rounds of GB/s of update read (GB = 10^9 bytes).",
            $"kernel: AggregationKernels.AccumulateMany over {Updates} updates in one call: the sum folded {AggregationKernels.FoldBlockLength:N0} floats at a time (in L2), {AggregationKernels.FusedUpdates} updates per inner vectorized pass, so the sum is read and written once per call: what a leaf runs on the updates pending together when it folds (lazy mode: all of the round's). One update at a time (AggregationKernels.Accumulate, TensorPrimitives.MultiplyAdd) it runs {single:0.0} GB/s, {single / probe:0.00}x the probe; that is the eager fold's speed when updates arrive one by one.",
            $"probe (read-bandwidth ceiling of the kernel's read of the update): the fastest median of {string.Join("; ", probes.Select(p => $"{p.Description} {Median(rounds[p]):0.0} GB/s"))}; here: {probePass.Description}.",
            "scalar: for (i ...) sum[i] += w * update[i] over spans, one float at a time (the JIT does not vectorize loops); it is the baseline of the kernel's ratio.",
            $"the kernel moves {FusedTrafficPerUpdateByte} bytes per byte of update (each update read once, the sum read and written once per {Updates}), one update at a time {KernelTrafficPerUpdateByte}: counted so they move {kernelTraffic:0.0} and {single * KernelTrafficPerUpdateByte:0.0} GB/s, {kernelTraffic / probe:0.00}x and {single * KernelTrafficPerUpdateByte / probe:0.00}x the read probe.",
        };
        var hugePages = ShmemHugePages();
        notes.Add(hugePages is "advise" or "always" or "within_size" or "force"
            ? $"huge pages for shared memory are on here (shmem_enabled: {hugePages}): the pool's buffers are mapped with 2 MB pages."
            : $"huge pages for shared memory are off here (shmem_enabled: {hugePages ?? "unknown"}): the pool's buffers use 4 KB pages, and a pass over five buffers at once spends part of its time in TLB misses; 'echo advise > /sys/kernel/mm/transparent_hugepage/shmem_enabled' (root) lets the pool's madvise take them.");
        if (cpuShare < BusyMachineCpuShare)
        {
            notes.Add($"the machine was busy: this process ran {cpuShare * 100:0}% of the time of the rounds; a long pass (scalar, kernel) is preempted more often than a short one (probe), so the ratios are less certain than usual.");
        }

        if (ratio < RatioToProbeTarget)
        {
            notes.Add($"kernel / probe below {RatioToProbeTarget}: the probe reads 1 byte per byte of update, the fused kernel moves {FusedTrafficPerUpdateByte}; the pass is bound by that traffic, not by its arithmetic.");
        }

        return new BenchmarkReport
        {
            Benchmark = Name,
            Quick = options.Quick,
            Duration = duration,
            Figures =
            [
                new BenchmarkFigure("kernel_gbps", "kernel", "kernel, update read (vs scalar)", "GB/s", kernel, scalar, Target: null),
                new BenchmarkFigure("probe_gbps", "probe", "memory-read probe", "GB/s", probe, Baseline: null, Target: null),
                new BenchmarkFigure("scalar_gbps", "scalar", "scalar loop, update read", "GB/s", scalar, Baseline: null, Target: null),
                new BenchmarkFigure("kernel_single_gbps", "kernel_single", "kernel, one update per pass", "GB/s", single, scalar, Target: null),
                new BenchmarkFigure("ratio_to_probe", "kernel_probe", "kernel / probe", "x", ratio, Baseline: null,
                    BenchmarkTarget.AtLeast(RatioToProbeTarget)),
            ],
            Notes = notes,
            Details = new Dictionary<string, object>
            {
                ["method"] = $"median of {sizes.Rounds} rounds after {sizes.Warmup.TotalSeconds:0.#} s of warm-up per pass, one thread",
                ["floats"] = sizes.Length,
                ["update_bytes"] = (long)sizes.Length * sizeof(float),
                ["updates"] = Updates,
                ["rounds"] = sizes.Rounds,
                ["warmup_seconds_per_pass"] = sizes.Warmup.TotalSeconds,
                ["buffers"] = $"shared-memory pool {buffers.PoolName}",
                ["probe_method"] = probePass.Key,
                ["process_cpu_share_during_rounds"] = Round(cpuShare),
                ["shmem_huge_pages"] = hugePages ?? "unknown",
                ["kernel_all_traffic_gbps"] = Round(kernelTraffic),
                ["kernel_all_traffic_to_probe"] = Round(kernelTraffic / probe),
                ["scalar_all_traffic_gbps"] = Round(scalar * KernelTrafficPerUpdateByte),
                ["median_gbps"] = passes.ToDictionary(p => p.Key, p => Round(Median(rounds[p]))),
                // The least disturbed round of each: on a busy machine closer to what the pass can do than the median.
                ["best_gbps"] = passes.ToDictionary(p => p.Key, p => Round(rounds[p].Max())),
                ["rounds_gbps"] = passes.ToDictionary(p => p.Key, p => rounds[p].Select(Round).ToList()),
                ["kernel_all_traffic_rounds_gbps"] = rounds[kernelPass].Select(g => Round(g * FusedTrafficPerUpdateByte)).ToList(),
                ["kernel_single_all_traffic_gbps"] = Round(single * KernelTrafficPerUpdateByte),
            },
        };
    }

    /// <summary>One pass over the next update, in GB/s of update read.</summary>
    private static double TimePass(UpdatePass pass, UpdateBuffers buffers)
    {
        var sum = buffers.Sum;
        var start = Stopwatch.GetTimestamp();
        var bytes = pass.Body(sum, buffers);
        var seconds = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        return bytes / seconds / BytesPerGB;
    }

    /// <summary>The selected value of /sys/kernel/mm/transparent_hugepage/shmem_enabled ("never", "advise", ...), null where unreadable.</summary>
    private static string? ShmemHugePages()
    {
        try
        {
            var text = File.ReadAllText("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
            var start = text.IndexOf('[', StringComparison.Ordinal);
            var end = text.IndexOf(']', StringComparison.Ordinal);
            return start >= 0 && end > start ? text[(start + 1)..end] : null;
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static double Round(double value) => Math.Round(value, 3);
}

/// <summary>The sizes of a normal and of a quick run.</summary>
internal sealed record AggregateBenchmarkSizes(int Length, int Rounds, TimeSpan Warmup)
{
    public static AggregateBenchmarkSizes For(BenchmarkOptions options) => options.Quick
        ? new(2_000_000, 16, TimeSpan.FromSeconds(1))
        : new(AggregateBenchmark.ResNet18Parameters, 48, TimeSpan.FromSeconds(2));
}
