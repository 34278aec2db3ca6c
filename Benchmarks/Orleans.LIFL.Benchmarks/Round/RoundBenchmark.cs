using System.Diagnostics;
using System.Globalization;
using Orleans.LIFL.Benchmarks.Harness;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Diagnostics;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.PostgreSql.Development;
using Orleans.LIFL.Silo;

namespace Orleans.LIFL.Benchmarks.Round;

/// <summary>
/// LIFL against a serverful FL server, on the same silo cluster of this machine: N trainers in separate client
/// processes submit updates of P float32 values over TCP; LIFL (hierarchy, eager, locality, warm reuse, zero copy)
/// and one ablation per feature run as FL jobs on the platform's grains, the baseline as one always-on aggregator
/// receiving managed arrays in grain messages and aggregating lazily. Each run gets fresh silo and trainer processes.
/// </summary>
public sealed class RoundBenchmark : IBenchmark
{
    public const int DefaultClients = 100;
    public const int DefaultParameters = 11_689_512;
    public const double AggregationRatioTarget = 3;
    public const double CpuRatioTarget = 2;

    private const string Secret = "round-benchmark-secret-0123456789";
    private const int Rounds = 3;
    private const int Silos = 2;

    /// <summary>How long the silos' membership probes wait for an answer (the default is 3 s).</summary>
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How often the serverful aggregator is asked whether its first round is over (it has no wait call).</summary>
    private static readonly TimeSpan FirstRoundPoll = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// How long one run's trainers may take: seconds to minutes here; the serverful baseline at N = 300 took over five
    /// minutes on 2026-12-06 (three rounds of 300 updates copied into one silo's managed heap).
    /// </summary>
    private static readonly TimeSpan RunPatience = TimeSpan.FromMinutes(15);

    /// <summary>Updates the node's silos receive at once (Lifl:Dataplane:MaxIncomingTransfers, node-wide).</summary>
    private const int IncomingTransfers = 1;

    /// <summary>The silos' pool (address space; memory is used only as buffers are written).</summary>
    private const long PoolCapacity = 16L << 30;

    public string Name => "round";

    public string Description => "an FL round of N trainer processes over TCP: LIFL vs a serverful aggregator, with one ablation per LIFL feature";

    /// <summary>The runs, in order: LIFL, the baseline, then each feature turned off.</summary>
    private static readonly (string Name, TrainerMode Mode, AggregationSettings? Aggregation)[] Runs =
    [
        ("lifl", TrainerMode.Shared, new AggregationSettings()),
        ("baseline", TrainerMode.Serverful, null),
        ("no_hierarchy", TrainerMode.Shared, new AggregationSettings { Hierarchical = false }),
        ("lazy", TrainerMode.Shared, new AggregationSettings { Eager = false }),
        ("no_locality", TrainerMode.Shared, new AggregationSettings { LocalityAware = false }),
        ("cold_start", TrainerMode.Shared, new AggregationSettings { WarmWindow = TimeSpan.Zero }),
        ("copy", TrainerMode.Array, new AggregationSettings()),
    ];

    public async Task<BenchmarkReport> RunAsync(BenchmarkOptions options, IProgress<string> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(progress);
        var clients = options.Clients ?? (options.Quick ? 10 : DefaultClients);
        var parameters = options.Parameters ?? (options.Quick ? 1_000_000 : DefaultParameters);
        var modelBytes = (long)parameters * sizeof(float);
        var total = Stopwatch.StartNew();

        progress.Report("starting a private PostgreSQL server (membership)");
        await using var postgres = await PrivatePostgresServer.StartAsync();
        var processes = Math.Min(clients, options.Quick ? 4 : 10);

        var results = new Dictionary<string, RunResult>();
        var skipped = new Dictionary<string, string>();
        var failed = new Dictionary<string, string>();
        // Lazy aggregation keeps every update of the round: past the pool, its trainers' uploads would be refused.
        var lazyPoolBytes = clients * SharedBufferPool.BlockLength(modelBytes);
        foreach (var (name, mode, aggregation) in Runs)
        {
            if (aggregation is { Eager: false } && lazyPoolBytes > PoolCapacity)
            {
                skipped[name] = $"not run: summing at the close keeps all {clients} updates, {lazyPoolBytes / (double)(1L << 30):0.0} GiB of pool blocks, more than the silos' {PoolCapacity >> 30} GiB pool";
                progress.Report($"{name}: {skipped[name]}");
                continue;
            }

            progress.Report($"{name}: {Silos} fresh silo processes, {processes} fresh trainer processes for {clients} trainers, {Rounds} rounds of {parameters:N0} float32 ({modelBytes / 1e6:0.0} MB) updates");
            try
            {
                results[name] = await RunOnceAsync(name, mode, aggregation, clients, parameters, postgres.ConnectionString, processes, cancellationToken);
            }
            catch (InvalidOperationException error) when (name is not ("lifl" or "baseline"))
            {
                // An ablation that breaks down is a result too (reported under "failed"); the targets need LIFL and the baseline only.
                failed[name] = error.Message.Split(Environment.NewLine)[0];
                progress.Report($"{name}: failed: {failed[name]}");
                continue;
            }

            var r = results[name];
            progress.Report($"{name}: aggregation {r.AggregationSeconds * 1000:0.0} ms, round {r.RoundSeconds:0.00} s, silo CPU {r.CpuSeconds:0.00} s, peak +{r.PeakBytes / 1e6:0} MB (heaps +{r.PeakHeapBytes / 1e6:0}, pool +{r.PeakPoolBytes / 1e6:0}, its buffers at most {r.PeakPoolRequestedBytes / 1e6:0} at once)"
                + (r.FinishSeconds > 0 ? $"; aggregation = finish {r.FinishSeconds * 1000:0} + step {r.StepSeconds * 1000:0} + store {r.StoreSeconds * 1000:0} ms + the rest" : ""));
        }

        total.Stop();
        return Report(options, clients, parameters, processes, results, skipped, failed, total.Elapsed);
    }

    private static async Task<RunResult> RunOnceAsync(
        string name, TrainerMode mode, AggregationSettings? aggregation, int clients, int parameters, string connectionString, int processes, CancellationToken cancellationToken)
    {
        // Fresh trainers too: a run that sends managed arrays leaves gigabytes of heap in them, which the next would pay for.
        await using var trainers = TrainerProcesses.Start(processes, Secret);
        var clusterId = $"round-{name}-{Guid.NewGuid().ToString("N")[..6]}";
        var options = new SiloProcessOptions
        {
            LiflProgram = SiloProcess.LocateLiflProgram(),
            Secret = Secret,
            PostgresConnectionString = connectionString,
            ClusterId = clusterId,
            ExtraArguments = ["--storage", "memory"],
            // Room for the lazy ablation, which keeps a round's updates (in 64 MiB blocks each at the default size).
            // One update received at a time on the node (both silos together): with the global model, that is the
            // "+ 2" of the memory bound; the default (the cores, at least 2) trades a model's memory for round time.
            Environment = new Dictionary<string, string>
            {
                ["Lifl__Dataplane__PoolCapacity"] = PoolCapacity.ToString(CultureInfo.InvariantCulture),
                ["Lifl__Dataplane__MaxIncomingTransfers"] = IncomingTransfers.ToString(CultureInfo.InvariantCulture),
                // The copy ablation sends 46.8 MB grain messages between the silos; a probe's bytes queue behind them on the
                // link, and with the default 3 s wait a busy silo was once declared dead mid-run (this measures aggregation,
                // not failure detection).
                ["Lifl__Membership__ProbeTimeout"] = ProbeTimeout.ToString("c", CultureInfo.InvariantCulture),
            },
        };
        var started = await Task.WhenAll(Enumerable.Range(0, Silos).Select(i => SiloProcess.StartAsync(options with { Name = $"{name}{i}" }, cancellationToken)));
        try
        {
            using var client = await BenchmarkClient.StartAsync(started[0].Gateway, Secret, clusterId, cancellationToken);
            // The silos' pool, as this process (a client of their node) maps it.
            var pool = client.Pool;
            var pids = started.Select(s => s.ProcessId).ToList();
            var cpuBefore = pids.Sum(ProcessResources.CpuSeconds);
            await using var memory = new MemorySampler(pids, pool.GetStatistics);
            var template = new TrainerCommand([], clusterId, $"job-{name}", mode, parameters, Rounds, 0, 0);
            var gateways = started.Select(s => s.Gateway).ToList();
            RunResult result;
            double cpuAfterFirstRound;
            if (mode == TrainerMode.Serverful)
            {
                var aggregator = client.GetGrain<IServerfulAggregatorGrain>(template.JobId);
                await aggregator.Start(clients, parameters, Rounds);
                var firstRound = CpuAfterFirstRoundAsync(pids, async () =>
                {
                    await Task.Delay(FirstRoundPoll, cancellationToken);
                    return (await aggregator.Rounds()).Count > 0;
                });
                await WhileSilosLiveAsync(trainers.RunAsync(template, clients, [started[0].Gateway], RunPatience, cancellationToken), started);
                cpuAfterFirstRound = await firstRound;
                var measured = (await aggregator.Rounds()).Skip(1).ToList();
                result = new RunResult(
                    measured.Average(r => r.AggregationMilliseconds) / 1000, measured.Average(r => r.RoundMilliseconds) / 1000, 0, 0, Aggregators: 1, Depth: 1, ColdStarts: 0, WarmStarts: 0, BytesCopied: 0);
            }
            else
            {
                var job = client.GetGrain<IFlJobGrain>(template.JobId);
                using (var initial = pool.Rent((long)parameters * sizeof(float)))
                {
                    initial.Span.Clear();
                    await job.Create(
                        new FlJobDefinition
                        {
                            Model = new ModelSpec([new TensorSpec("weights", [parameters])]),
                            Rounds = Rounds,
                            ClientsPerRound = clients,
                            MinUpdates = clients,
                            GoalUpdates = clients,
                            RoundDeadline = TimeSpan.FromMinutes(20),
                            Aggregation = aggregation!,
                            KeepModels = 1,
                        },
                        initial);
                }

                var revision = 0L;
                var firstRound = CpuAfterFirstRoundAsync(pids, async () =>
                {
                    var status = await job.WaitForChange(revision, RunPatience);
                    revision = status.Revision;
                    return status.History.Length > 0;
                });
                await WhileSilosLiveAsync(trainers.RunAsync(template, clients, gateways, RunPatience, cancellationToken), started);
                cpuAfterFirstRound = await firstRound;
                var measured = (await job.Status()).History.Skip(1).ToList();
                var last = measured[^1];
                result = new RunResult(
                    measured.Average(r => r.AggregationMilliseconds) / 1000,
                    measured.Average(r => r.RoundMilliseconds) / 1000,
                    0,
                    0,
                    last.Aggregators,
                    last.HierarchyDepth,
                    measured.Sum(r => r.ColdStarts),
                    measured.Sum(r => r.WarmStarts),
                    measured.Sum(r => r.BytesCopied))
                {
                    FinishSeconds = measured.Average(r => r.FinishMilliseconds) / 1000,
                    StepSeconds = measured.Average(r => r.StepMilliseconds) / 1000,
                    StoreSeconds = measured.Average(r => r.StoreMilliseconds) / 1000,
                };
            }

            var cpuAfter = pids.Sum(ProcessResources.CpuSeconds);
            return result with
            {
                CpuSeconds = cpuAfter - cpuAfterFirstRound,
                WholeRunCpuSeconds = cpuAfter - cpuBefore,
                PeakBytes = memory.PeakGrowth,
                PeakHeapBytes = memory.PeakHeapGrowth,
                PeakPoolBytes = memory.PeakPoolGrowth,
                PeakPoolRequestedBytes = memory.PeakPoolRequested,
            };
        }
        finally
        {
            await Task.WhenAll(started.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    /// <summary>
    /// The silos' CPU seconds once <paramref name="firstRoundDone"/> says the first round is over: rounds after it are
    /// measured, as for the times (the first pays for JIT compilation, connections and activations in fresh processes).
    /// </summary>
    private static async Task<double> CpuAfterFirstRoundAsync(IReadOnlyList<int> pids, Func<Task<bool>> firstRoundDone)
    {
        while (!await firstRoundDone())
        {
        }

        return pids.Sum(ProcessResources.CpuSeconds);
    }

    /// <summary>Awaits <paramref name="work"/>, failing with the silos' last output if one exits first or the work fails.</summary>
    private static async Task WhileSilosLiveAsync(Task work, IReadOnlyList<SiloProcess> silos)
    {
        var exited = Task.WhenAny(silos.Select(s => s.Exited));
        if (await Task.WhenAny(work, exited) != work)
        {
            var silo = silos.First(s => s.HasExited);
            throw new InvalidOperationException($"A silo process exited (code {silo.ExitCode}) during the run.{Output(silos)}");
        }

        try
        {
            await work;
        }
        catch (Exception error) when (error is TimeoutException or InvalidOperationException)
        {
            throw new InvalidOperationException($"{error.Message}{Output(silos)}", error);
        }
    }

    private static string Output(IReadOnlyList<SiloProcess> silos) =>
        string.Concat(silos.Select(s => $"{Environment.NewLine}--- silo {s.SiloAddress}{(s.HasExited ? $" (exited, code {s.ExitCode})" : "")}:{Environment.NewLine}{s.RecentOutput}"));

    private BenchmarkReport Report(
        BenchmarkOptions options, int clients, int parameters, int processes, Dictionary<string, RunResult> results, Dictionary<string, string> skipped, Dictionary<string, string> failed, TimeSpan duration)
    {
        var lifl = results["lifl"];
        var baseline = results["baseline"];
        var modelBytes = (long)parameters * sizeof(float);
        var memoryBound = (lifl.Aggregators + 2) * modelBytes;
        object Figures(RunResult r) => new Dictionary<string, double>
        {
            ["aggregation_s"] = Math.Round(r.AggregationSeconds, 4),
            ["round_s"] = Math.Round(r.RoundSeconds, 3),
            ["cpu_s"] = Math.Round(r.CpuSeconds, 3),
            ["cpu_whole_run_s"] = Math.Round(r.WholeRunCpuSeconds, 3),
            ["peak_mb"] = Math.Round(r.PeakBytes / 1e6, 1),
        };

        return new BenchmarkReport
        {
            Benchmark = Name,
            Quick = options.Quick,
            Duration = duration,
            Figures =
            [
                new BenchmarkFigure("aggregation_s", "aggregation", "aggregation time, LIFL (vs serverful)", "s", lifl.AggregationSeconds, baseline.AggregationSeconds, null, LowerIsBetter: true),
                new BenchmarkFigure("ratio_aggregation", "ratio_aggregation", "serverful / LIFL aggregation time", "x",
                    baseline.AggregationSeconds / lifl.AggregationSeconds, Baseline: null, BenchmarkTarget.AtLeast(AggregationRatioTarget)),
                new BenchmarkFigure("round_s", "round", "round time, LIFL (vs serverful)", "s", lifl.RoundSeconds, baseline.RoundSeconds, null, LowerIsBetter: true),
                new BenchmarkFigure("cpu_s", "cpu", $"silo CPU for rounds 2-{Rounds}, LIFL (vs serverful)", "s", lifl.CpuSeconds, baseline.CpuSeconds, null, LowerIsBetter: true),
                new BenchmarkFigure("ratio_cpu", "ratio_cpu", "serverful / LIFL CPU seconds", "x", baseline.CpuSeconds / lifl.CpuSeconds, Baseline: null,
                    BenchmarkTarget.AtLeast(CpuRatioTarget)),
                new BenchmarkFigure("peak_mb", "peak", "peak memory added, LIFL (vs serverful)", "MB", lifl.PeakBytes / 1e6, baseline.PeakBytes / 1e6,
                    BenchmarkTarget.AtMost(memoryBound / 1e6), LowerIsBetter: true),
            ],
            Extras = new Dictionary<string, object>
            {
                ["lifl"] = Figures(lifl),
                ["baseline"] = Figures(baseline),
                ["ablations"] = results.Where(r => r.Key is not ("lifl" or "baseline")).ToDictionary(r => r.Key, r => Figures(r.Value)),
                ["ratio_aggregation"] = Math.Round(baseline.AggregationSeconds / lifl.AggregationSeconds, 3),
                ["ratio_cpu"] = Math.Round(baseline.CpuSeconds / lifl.CpuSeconds, 3),
                ["peak_bound_mb"] = Math.Round(memoryBound / 1e6, 1),
                ["skipped"] = skipped,
                ["failed"] = failed,
            },
            Notes =
            [
                $"{clients} trainers in {processes} client processes (not the silos'), each process's trainers sharing one update of {parameters:N0} float32 ({modelBytes / 1e6:0.0} MB) with its own example count; they connect as clients of another machine (their own pool), so updates cross TCP into the silos' pool.",
                $"each run: {Silos} fresh lifl silo processes and {processes} fresh trainer processes on this machine (membership in a private PostgreSQL, grain state in memory), {Rounds} rounds of all {clients} trainers; times are the mean of the rounds after the first (which starts processes, connections and aggregators).",
                "aggregation time: from the round's last update taken to the global model published and stored (serverful: to the model computed, nothing stored); round time: from the round's start (serverful: its first update) to the same. Details carry LIFL's parts: the hierarchy finishing, the model step, storing the model.",
                $"CPU: user + system seconds of the silo processes over the measured rounds (2 to {Rounds}: from the first round's end to the run's), read from /proc; cpu_whole_run_s adds the first round, in which fresh processes spend seconds compiling code (LIFL {lifl.WholeRunCpuSeconds:0.0} s, serverful {baseline.WholeRunCpuSeconds:0.0} s, a ratio of {baseline.WholeRunCpuSeconds / lifl.WholeRunCpuSeconds:0.00}). Peak memory: the most the run added to the silo processes' private memory plus the pages of the node's shared pool (written pages, which a freed block keeps), sampled every 20 ms; the target is (LIFL's {lifl.Aggregators} aggregators + 2) × the model.",
                $"configuration of every run: the node's silos receive {IncomingTransfers} streamed update at a time between them (Lifl:Dataplane:MaxIncomingTransfers, node-wide; an update keeps its place until folded), the jobs keep their latest model only (KeepModels = 1; the in-memory blob store keeps a reference to the job's own buffer), membership probes wait {ProbeTimeout.TotalSeconds:0} s for an answer (Lifl:Membership:ProbeTimeout; the copy ablation's large grain messages delay them on the silos' link).",
                "LIFL: a planned hierarchy of warm aggregators next to where updates land, folding each update on arrival, updates moving as handles after their receipt; baseline: one always-on aggregator getting managed arrays in grain messages, summing them once all are in, its trainers connected to its silo (the other idles); ablations: one LIFL feature off each (no_hierarchy: one aggregator; lazy: summing at the close; no_locality: leaves anywhere; cold_start: no warm window; copy: updates as arrays in grain messages).",
                .. skipped.Select(s => $"{s.Key}: {s.Value}."),
                .. failed.Select(f => $"{f.Key}: failed: {f.Value}"),
            ],
            Details = results.ToDictionary(r => r.Key, r => (object)r.Value),
        };
    }

    private sealed record RunResult(
        double AggregationSeconds,
        double RoundSeconds,
        double CpuSeconds,
        long PeakBytes,
        int Aggregators,
        int Depth,
        int ColdStarts,
        int WarmStarts,
        long BytesCopied)
    {
        /// <summary>The silos' CPU seconds over the whole run, the first round's included.</summary>
        public double WholeRunCpuSeconds { get; init; }

        /// <summary>The peak of the silos' private memory alone (managed heaps, arrays).</summary>
        public long PeakHeapBytes { get; init; }

        /// <summary>The peak of the shared pool alone.</summary>
        public long PeakPoolBytes { get; init; }

        /// <summary>The most the pool's live buffers asked for at once (the pages the pool holds can exceed it).</summary>
        public long PeakPoolRequestedBytes { get; init; }

        /// <summary>Parts of the aggregation time (LIFL runs): the hierarchy finishing, the model step, storing the model.</summary>
        public double FinishSeconds { get; init; }

        public double StepSeconds { get; init; }

        public double StoreSeconds { get; init; }
    }
}
