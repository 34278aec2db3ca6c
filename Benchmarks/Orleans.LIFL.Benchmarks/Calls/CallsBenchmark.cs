using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Benchmarks.Harness;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Hosting;

namespace Orleans.LIFL.Benchmarks.Calls;

/// <summary>
/// Grain calls inside one embedded silo: throughput of many concurrent callers, latency of one caller, and how fast
/// new activations are created, each against a hand-written Channels mailbox baseline measured in the same run.
/// </summary>
public sealed class CallsBenchmark : IBenchmark
{
    public const int Grains = 1_000;
    public const int Callers = 100;
    public const int Rounds = 3;

    public const double CallsPerSecondTarget = 1_000_000;
    public const double P50MicrosecondsTarget = 3;
    public const double ActivationsPerSecondTarget = 60_000;

    // Keys of the grains created by the activation measurement: far from the 0..Grains-1 of the call measurements.
    private const long FreshKeyBase = 1_000_000_000;

    public string Name => "calls";

    public string Description => "in-silo grain calls/s, sequential call latency and activations/s, against a Channels mailbox baseline";

    public async Task<BenchmarkReport> RunAsync(BenchmarkOptions options, IProgress<string> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(progress);
        var sizes = CallsBenchmarkSizes.For(options);
        var total = Stopwatch.StartNew();

        var ours = await MeasureRuntimeAsync(sizes, progress, cancellationToken);
        var baseline = await MeasureBaselineAsync(sizes, progress, cancellationToken);

        total.Stop();
        return new BenchmarkReport
        {
            Benchmark = Name,
            Quick = options.Quick,
            Duration = total.Elapsed,
            Figures =
            [
                new BenchmarkFigure("calls_per_second", "calls", "calls", "/s",
                    ours.CallsPerSecond, baseline.CallsPerSecond, BenchmarkTarget.AtLeast(CallsPerSecondTarget)),
                new BenchmarkFigure("p50_us", "p50", "p50 latency", "µs",
                    ours.Latency.P50Us, baseline.Latency.P50Us, BenchmarkTarget.AtMost(P50MicrosecondsTarget), LowerIsBetter: true),
                new BenchmarkFigure("p99_us", "p99", "p99 latency", "µs",
                    ours.Latency.P99Us, baseline.Latency.P99Us, Target: null, LowerIsBetter: true),
                new BenchmarkFigure("activations_per_second", "activations", "activations", "/s",
                    ours.CreationsPerSecond, baseline.CreationsPerSecond, BenchmarkTarget.AtLeast(ActivationsPerSecondTarget)),
            ],
            Notes =
            [
                $"calls: {Callers} concurrent callers over {Grains:N0} grains, each awaiting each reply before its next call; median of {Rounds} rounds of {sizes.Round.TotalSeconds:0.#} s, after activating the grains and a {sizes.WarmupRound.TotalSeconds:0.#} s warm-up round.",
                $"latency: one caller, {sizes.LatencyCalls:N0} calls one after the other over the {Grains:N0} grains, after {sizes.LatencyWarmupCalls:N0} unrecorded ones.",
                $"activations: first calls to {sizes.Activations:N0} grains that never existed, by {Callers} concurrent callers; collection age 1 h so none is collected meanwhile.",
                "baseline: one object per grain with an unbounded System.Threading.Channels mailbox read by its own async loop, replies through a TaskCompletionSource (continuations asynchronous); for activations, creating such objects in a ConcurrentDictionary on first call.",
                "ratio = ours / baseline: above 1 is better for calls and activations, below 1 is better for latencies.",
            ],
            Details = new Dictionary<string, object>
            {
                ["method"] = $"median of {Rounds} rounds",
                ["grains"] = Grains,
                ["callers"] = Callers,
                ["round_seconds"] = sizes.Round.TotalSeconds,
                ["warmup_round_seconds"] = sizes.WarmupRound.TotalSeconds,
                ["latency_calls"] = sizes.LatencyCalls,
                ["fresh_activations"] = sizes.Activations,
                ["calls_per_second_rounds"] = ours.Rounds,
                ["baseline_calls_per_second_rounds"] = baseline.Rounds,
                ["latency_us"] = ours.Latency,
                ["baseline_latency_us"] = baseline.Latency,
            },
        };
    }

    private static async Task<CallFigures> MeasureRuntimeAsync(CallsBenchmarkSizes sizes, IProgress<string> progress, CancellationToken cancellationToken)
    {
        progress.Report("starting an embedded silo");
        using var host = BuildSiloHost();
        await host.StartAsync(cancellationToken);
        try
        {
            var factory = host.Services.GetRequiredService<IGrainFactory>();
            var grains = new IPingGrain[Grains];
            for (var i = 0; i < Grains; i++)
            {
                grains[i] = factory.GetGrain<IPingGrain>(i);
            }

            progress.Report($"activating {Grains:N0} grains");
            await Task.WhenAll(grains.Select(g => g.Ping(0).AsTask()));

            var figures = await MeasureAsync(
                "grains",
                (target, value) => grains[target].Ping(value),
                key => factory.GetGrain<IPingGrain>(key).Ping(0),
                sizes,
                progress,
                cancellationToken);

            progress.Report($"stopping the silo ({Grains + sizes.Activations:N0} activations)");
            return figures;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    private static async Task<CallFigures> MeasureBaselineAsync(CallsBenchmarkSizes sizes, IProgress<string> progress, CancellationToken cancellationToken)
    {
        using var baseline = new ChannelMailboxBaseline();
        var actors = new MailboxActor[Grains];
        for (var i = 0; i < Grains; i++)
        {
            actors[i] = baseline.GetOrCreate(i);
        }

        return await MeasureAsync(
            "baseline mailboxes",
            (target, value) => actors[target].Ping(value),
            key => baseline.GetOrCreate(key).Ping(0),
            sizes,
            progress,
            cancellationToken);
    }

    private static async Task<CallFigures> MeasureAsync(
        string subject,
        TargetCall call,
        FreshTargetCall firstCall,
        CallsBenchmarkSizes sizes,
        IProgress<string> progress,
        CancellationToken cancellationToken)
    {
        progress.Report($"{subject}: warm-up round ({sizes.WarmupRound.TotalSeconds:0.#} s)");
        await CallWorkload.MeasureThroughputAsync(call, Grains, Callers, sizes.WarmupRound, cancellationToken);

        var rounds = new double[Rounds];
        for (var round = 0; round < Rounds; round++)
        {
            progress.Report($"{subject}: calls/s round {round + 1} of {Rounds} ({sizes.Round.TotalSeconds:0.#} s)");
            Settle();
            rounds[round] = await CallWorkload.MeasureThroughputAsync(call, Grains, Callers, sizes.Round, cancellationToken);
        }

        progress.Report($"{subject}: latency of {sizes.LatencyCalls:N0} sequential calls");
        Settle();
        var latency = await CallWorkload.MeasureLatencyAsync(call, Grains, sizes.LatencyCalls, sizes.LatencyWarmupCalls, cancellationToken);

        progress.Report($"{subject}: {sizes.Activations:N0} first calls to new targets");
        Settle();
        var creations = await CallWorkload.MeasureCreationAsync(firstCall, FreshKeyBase, sizes.Activations, Callers, cancellationToken);

        return new CallFigures(Median(rounds), rounds, latency, creations);
    }

    private static IHost BuildSiloHost()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.UseLiflSilo(silo => silo.Configure<GrainCollectionOptions>(o =>
        {
            // Nothing may be collected while it is measured.
            o.CollectionAge = TimeSpan.FromHours(1);
            o.CollectionQuantum = TimeSpan.FromMinutes(1);
        }));
        return builder.Build();
    }

    /// <summary>Collects the garbage of the previous phase so that it is not charged to the next one.</summary>
    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private sealed record CallFigures(double CallsPerSecond, double[] Rounds, LatencyDistribution Latency, double CreationsPerSecond);
}

/// <summary>The sizes of a normal and of a quick run.</summary>
internal sealed record CallsBenchmarkSizes(TimeSpan WarmupRound, TimeSpan Round, int LatencyCalls, int LatencyWarmupCalls, int Activations)
{
    public static CallsBenchmarkSizes For(BenchmarkOptions options) => options.Quick
        ? new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), 20_000, 5_000, 10_000)
        : new(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5), 200_000, 20_000, 100_000);
}
