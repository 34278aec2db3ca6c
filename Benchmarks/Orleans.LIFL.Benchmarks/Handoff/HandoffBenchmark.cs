using System.Diagnostics;
using Orleans.LIFL.Benchmarks.Calls;
using Orleans.LIFL.Benchmarks.ClusterCalls;
using Orleans.LIFL.Benchmarks.Harness;
using Orleans.LIFL.PostgreSql.Development;
using Orleans.LIFL.Silo;

namespace Orleans.LIFL.Benchmarks.Handoff;

/// <summary>
/// Hand-off of shared buffers between silo processes of one node (only a descriptor crosses) against copying the
/// bytes over loopback TCP into another pool (what a silo of another node gets), for 1 KB to 256 MB; and the
/// round-trip latency of small grain calls between silo processes with eBPF socket redirection on and off.
/// </summary>
public sealed class HandoffBenchmark : IBenchmark
{
    public const double Descriptor256MBTargetUs = 50;
    public const double CopyRatio64MBTarget = 100;
    public const double SizeIndependenceTarget = 2;

    private const string Secret = "handoff-benchmark-secret-0123";
    private const long PingKeysOnB = 3_000_000;
    private const long PingKeysOnC = 4_000_000;
    private const int PingTargets = 100;
    private const int WarmupHandOffs = 4_000;
    private const int DescriptorPasses = 3;

    private static readonly (string Name, int Bytes)[] Sizes =
    [
        ("1KB", 1 << 10),
        ("1MB", 1 << 20),
        ("64MB", 64 << 20),
        ("256MB", 256 << 20),
    ];

    public string Name => "handoff";

    public string Description => "shared buffers between silo processes: descriptor vs copy over TCP (1 KB to 256 MB); small-call RTT with eBPF redirection on vs off";

    public async Task<BenchmarkReport> RunAsync(BenchmarkOptions options, IProgress<string> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(progress);
        var total = Stopwatch.StartNew();
        var latencyRounds = options.Quick ? 1 : 3;
        var latencyCalls = options.Quick ? 5_000 : 20_000;

        progress.Report("starting a private PostgreSQL server");
        await using var postgres = await PrivatePostgresServer.StartAsync();
        var run = Guid.NewGuid().ToString("N")[..8];
        var silo = new SiloProcessOptions
        {
            LiflProgram = SiloProcess.LocateLiflProgram(),
            Secret = Secret,
            PostgresConnectionString = postgres.ConnectionString,
            ClusterId = "handoff-" + run,
        };

        // A and B: one node, one pool, eBPF on. C: told it is another node (its own pool), eBPF off, so A's
        // connection to it is plain loopback TCP and buffers sent to it are copied.
        progress.Report("starting silo processes A and B (one node, one pool) and C (another node, eBPF off)");
        var started = await Task.WhenAll(
            SiloProcess.StartAsync(silo with { Name = "A", ExtraArguments = ["--node-id", "node-1", "--pool", $"handoff-{run}-1"] }, cancellationToken),
            SiloProcess.StartAsync(silo with { Name = "B", ExtraArguments = ["--node-id", "node-1", "--pool", $"handoff-{run}-1"] }, cancellationToken),
            SiloProcess.StartAsync(silo with { Name = "C", ExtraArguments = ["--node-id", "node-2", "--pool", $"handoff-{run}-2", "--ebpf", "false"] }, cancellationToken));
        await using var a = started[0];
        await using var b = started[1];
        await using var c = started[2];
        using var clientA = await BenchmarkClient.StartAsync(a.Gateway, Secret, silo.ClusterId, cancellationToken);
        using var clientB = await BenchmarkClient.StartAsync(b.Gateway, Secret, silo.ClusterId, cancellationToken);
        using var clientC = await BenchmarkClient.StartAsync(c.Gateway, Secret, silo.ClusterId, cancellationToken);

        var receiverB = clientB.GetGrain<IHandoffReceiverGrain>(b.SiloAddress);
        var receiverC = clientC.GetGrain<IHandoffReceiverGrain>(c.SiloAddress);
        var (describedA, describedB, describedC) = (
            await clientA.GetGrain<IHandoffReceiverGrain>(a.SiloAddress).Describe(), await receiverB.Describe(), await receiverC.Describe());
        if (describedB.Silo != b.SiloAddress || describedC.Silo != c.SiloAddress)
        {
            throw new InvalidOperationException($"The receivers were not placed on their silos (B: {describedB.Silo}, C: {describedC.Silo}).");
        }

        var ebpf = describedA.EbpfActive && describedB.EbpfActive;
        var driver = clientA.GetGrain<IHandoffDriverGrain>("driver-" + run);

        var descriptor = new Dictionary<string, HandoffRun>();
        var copy = new Dictionary<string, HandoffRun>();
        // Until the JIT has optimized both paths in all three processes (tiered compilation), the first thousand
        // calls or so are several times slower than the rest.
        progress.Report($"warm-up: {WarmupHandOffs:N0} hand-offs A -> B and {WarmupHandOffs / 4:N0} copies A -> C of 4 KB");
        await driver.HandOff(b.SiloAddress, 4096, WarmupHandOffs);
        await driver.HandOff(c.SiloAddress, 4096, WarmupHandOffs / 4);

        // Descriptor runs in passes of alternating order, so that no size is favoured by when it runs.
        var passes = new List<HandoffRun>[Sizes.Length];
        for (var pass = 0; pass < DescriptorPasses; pass++)
        {
            var order = pass % 2 == 0 ? Enumerable.Range(0, Sizes.Length) : Enumerable.Range(0, Sizes.Length).Reverse();
            foreach (var i in order)
            {
                var (name, bytes) = Sizes[i];
                var repetitions = options.Quick ? 100 : 500;
                progress.Report($"descriptor pass {pass + 1} of {DescriptorPasses}, {name}: {repetitions} hand-offs A -> B");
                (passes[i] ??= []).Add(Intact(await driver.HandOff(b.SiloAddress, bytes, repetitions), "A -> B"));
            }
        }

        for (var i = 0; i < Sizes.Length; i++)
        {
            descriptor[Sizes[i].Name] = passes[i].OrderBy(r => r.OneWayP50Us).ElementAt(passes[i].Count / 2);
        }

        foreach (var (name, bytes) in Sizes)
        {
            var repetitions = options.Quick ? (bytes >= 64 << 20 ? 2 : 20) : bytes >= 64 << 20 ? 5 : bytes >= 1 << 20 ? 50 : 500;
            progress.Report($"copy, {name}: {repetitions} copies A -> C over TCP");
            copy[name] = Intact(await driver.HandOff(c.SiloAddress, bytes, repetitions), "A -> C");
        }

        var afterB = await receiverB.Describe();
        var afterC = await receiverC.Describe();

        progress.Report($"activating {PingTargets} ping grains on B and {PingTargets} on C");
        await Task.WhenAll(Enumerable.Range(0, PingTargets).Select(i => clientB.GetGrain<IClusterPingGrain>(PingKeysOnB + i).Ping(0).AsTask()));
        await Task.WhenAll(Enumerable.Range(0, PingTargets).Select(i => clientC.GetGrain<IClusterPingGrain>(PingKeysOnC + i).Ping(0).AsTask()));
        if (await clientA.GetGrain<IClusterPingGrain>(PingKeysOnB).Silo() != b.SiloAddress
            || await clientA.GetGrain<IClusterPingGrain>(PingKeysOnC).Silo() != c.SiloAddress)
        {
            throw new InvalidOperationException("The ping grains were not placed on B and C.");
        }

        var redirected = new List<LatencyDistribution>();
        var plain = new List<LatencyDistribution>();
        for (var i = 0; i < latencyRounds; i++)
        {
            // Interleaved, so that drift of the machine's load affects both alike.
            progress.Report($"round trip of small calls, round {i + 1} of {latencyRounds}: {latencyCalls:N0} sequential calls A -> B (eBPF), then A -> C (TCP)");
            redirected.Add(await driver.Latency(PingKeysOnB, PingTargets, latencyCalls));
            plain.Add(await driver.Latency(PingKeysOnC, PingTargets, latencyCalls));
        }

        total.Stop();
        var ebpfP50 = Median(redirected.Select(r => r.P50Us));
        var tcpP50 = Median(plain.Select(r => r.P50Us));
        var descriptorUs = descriptor.ToDictionary(e => e.Key, e => Math.Round(e.Value.OneWayP50Us, 3));
        var copyUs = copy.ToDictionary(e => e.Key, e => Math.Round(e.Value.OneWayP50Us, 3));
        var ratio64 = copy["64MB"].OneWayP50Us / descriptor["64MB"].OneWayP50Us;
        var figures = new List<BenchmarkFigure>();
        foreach (var (name, _) in Sizes)
        {
            figures.Add(new BenchmarkFigure($"handoff_{name}_us", $"handoff_{name}", $"hand-off {name}: descriptor (vs copy)", "µs",
                descriptor[name].OneWayP50Us, copy[name].OneWayP50Us,
                name == "256MB" ? BenchmarkTarget.AtMost(Descriptor256MBTargetUs) : null, LowerIsBetter: true));
        }

        figures.Add(new BenchmarkFigure("ratio_64MB", "copy_64MB", "copy / descriptor at 64 MB", "x", ratio64, Baseline: null,
            BenchmarkTarget.AtLeast(CopyRatio64MBTarget)));
        figures.Add(new BenchmarkFigure("descriptor_size_ratio", "descriptor_size", "descriptor 256 MB / 1 KB", "x",
            descriptor["256MB"].OneWayP50Us / descriptor["1KB"].OneWayP50Us, Baseline: null, BenchmarkTarget.AtMost(SizeIndependenceTarget)));
        figures.Add(new BenchmarkFigure("ebpf_rtt_p50_us", "ebpf_rtt", "small-call RTT p50, eBPF (vs TCP)", "µs",
            ebpfP50, tcpP50, ebpf ? BenchmarkTarget.AtMost(tcpP50) : null, LowerIsBetter: true));

        return new BenchmarkReport
        {
            Benchmark = Name,
            Quick = options.Quick,
            Duration = total.Elapsed,
            Figures = figures,
            Extras = new Dictionary<string, object>
            {
                ["descriptor_us"] = descriptorUs,
                ["copy_us"] = copyUs,
                ["tcp_rtt_p50_us"] = Math.Round(tcpP50, 3),
                ["ebpf_rtt_ratio"] = Math.Round(ebpfP50 / tcpP50, 3),
                ["ebpf_active"] = ebpf,
            },
            Notes =
            [
                "three lifl silo processes on this machine with a private PostgreSQL: A and B told they are one node (one shared pool, eBPF on), C another node (its own pool, eBPF off).",
                "hand-off: a grain on A passes a shared buffer to a grain on B (descriptor) or on C (the bytes streamed over TCP into C's pool); the time is from the call to the receiving grain holding the buffer, both read on the machine's monotonic clock; median of the repetitions; for descriptors the median of 3 passes over the sizes in alternating order, after a warm-up of 4,000 hand-offs.",
                $"the buffer is written once before the timing; the receiver checks a hash of it once per size (all intact). Bytes copied into B's pool: {afterB.BytesCopied:N0}; into C's: {afterC.BytesCopied:N0}.",
                $"round trip: {latencyCalls:N0} sequential ping calls from inside A to {PingTargets} grains on B (socket pair redirected by sk_msg) and on C (TCP/IP), interleaved, median of {latencyRounds} round(s).",
                ebpf
                    ? "eBPF redirection was in effect on A and B."
                    : $"eBPF redirection was NOT in effect ({describedA.EbpfUnavailableReason ?? describedB.EbpfUnavailableReason}): both round trips went through TCP/IP.",
            ],
            Details = new Dictionary<string, object>
            {
                ["descriptor"] = descriptor.Values.ToList(),
                ["descriptor_passes"] = passes.SelectMany(p => p).ToList(),
                ["copy"] = copy.Values.ToList(),
                ["ebpf_latency_us"] = redirected,
                ["tcp_latency_us"] = plain,
                ["bytes_copied_into_b"] = afterB.BytesCopied - describedB.BytesCopied,
                ["bytes_copied_into_c"] = afterC.BytesCopied - describedC.BytesCopied,
            },
        };
    }

    private static HandoffRun Intact(HandoffRun run, string link) => run.Intact
        ? run
        : throw new InvalidOperationException($"A {run.Length:N0}-byte buffer arrived corrupted on {link}.");

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
