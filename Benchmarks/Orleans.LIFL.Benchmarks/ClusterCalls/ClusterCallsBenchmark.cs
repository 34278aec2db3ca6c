using System.Diagnostics;
using Npgsql;
using Orleans.LIFL.Benchmarks.Calls;
using Orleans.LIFL.Benchmarks.Harness;
using Orleans.LIFL.PostgreSql.Development;
using Orleans.LIFL.Silo;

namespace Orleans.LIFL.Benchmarks.ClusterCalls;

/// <summary>
/// Calls between real silo processes on loopback (PostgreSQL membership, TCP): silo-to-silo calls per second and
/// latency, calls per second and latency from an external client through a gateway, and the time from kill -9 of a
/// silo to its death being declared. The baseline is bare TCP request/response over loopback in the same run.
/// </summary>
public sealed class ClusterCallsBenchmark : IBenchmark
{
    public const int Targets = 1_000;
    public const int Callers = 100;
    public const double GatewayCallsTarget = 300_000;
    public const double CrossSiloCallsTarget = 100_000;
    public const double P50Target = 50;
    public const double DeathDeclaredTargetMs = 3_000;

    private const string Secret = "cluster-calls-benchmark-secret";
    private static readonly TimeSpan Warmup = TimeSpan.FromSeconds(3);
    private const long CrossSiloTargetKeys = 1_000_000;
    private const long GatewayTargetKeys = 2_000_000;

    public string Name => "cluster-calls";

    public string Description => "calls between silo processes and through a gateway, latency, and kill -9 to death declared, against bare TCP";

    public async Task<BenchmarkReport> RunAsync(BenchmarkOptions options, IProgress<string> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(progress);
        var round = options.Quick ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(4);
        var rounds = options.Quick ? 1 : 3;
        var latencyCalls = options.Quick ? 5_000 : 30_000;
        var deaths = options.Quick ? 3 : 5;
        var total = Stopwatch.StartNew();

        progress.Report("starting a private PostgreSQL server");
        await using var postgres = await PrivatePostgresServer.StartAsync();
        var silo = new SiloProcessOptions
        {
            LiflProgram = SiloProcess.LocateLiflProgram(),
            Secret = Secret,
            PostgresConnectionString = postgres.ConnectionString,
        };

        progress.Report("starting silo processes A and B");
        await using var a = await SiloProcess.StartAsync(silo with { Name = "A" }, cancellationToken);
        await using var b = await SiloProcess.StartAsync(silo with { Name = "B" }, cancellationToken);
        using var clientA = await BenchmarkClient.StartAsync(a.Gateway, Secret, clusterId: null, cancellationToken);
        using var clientB = await BenchmarkClient.StartAsync(b.Gateway, Secret, clusterId: null, cancellationToken);
        var throughA = clientA.Client;
        var throughB = clientB.Client;

        progress.Report($"activating {Targets:N0} targets on B and {Targets:N0} on A");
        await Task.WhenAll(Enumerable.Range(0, Targets).Select(i => throughB.GetGrain<IClusterPingGrain>(CrossSiloTargetKeys + i).Ping(0).AsTask()));
        var gatewayTargets = Enumerable.Range(0, Targets).Select(i => throughA.GetGrain<IClusterPingGrain>(GatewayTargetKeys + i)).ToArray();
        await Task.WhenAll(gatewayTargets.Select(g => g.Ping(0).AsTask()));
        var placedOnB = await throughA.GetGrain<IClusterPingGrain>(CrossSiloTargetKeys).Silo();
        var placedOnA = await gatewayTargets[0].Silo();
        if (placedOnB != b.SiloAddress || placedOnA != a.SiloAddress)
        {
            throw new InvalidOperationException($"Targets were not placed as intended (B: {placedOnB}, A: {placedOnA}).");
        }

        var gatewayRounds = new List<double>();
        progress.Report($"client through gateway A: {Callers} callers, warm-up and {rounds} round(s) of {round.TotalSeconds:0} s");
        // Long enough for the JIT to finish optimizing the hot paths in both processes (tiered compilation).
        await CallWorkload.MeasureThroughputAsync((t, v) => gatewayTargets[t].Ping(v), Targets, Callers, Warmup, cancellationToken);
        for (var i = 0; i < rounds; i++)
        {
            gatewayRounds.Add(await CallWorkload.MeasureThroughputAsync((t, v) => gatewayTargets[t].Ping(v), Targets, Callers, round, cancellationToken));
        }

        progress.Report($"client through gateway A: latency of {latencyCalls:N0} sequential calls");
        var gatewayLatency = await CallWorkload.MeasureLatencyAsync((t, v) => gatewayTargets[t].Ping(v), Targets, latencyCalls, latencyCalls / 10, cancellationToken);

        var crossRounds = new List<double>();
        CrossSiloRun? crossLatency = null;
        progress.Report($"silo A to silo B: {Callers} callers in A, {rounds} round(s) of {round.TotalSeconds:0} s, then latency");
        var driver = throughA.GetGrain<ICrossSiloDriverGrain>(1);
        for (var i = 0; i < rounds; i++)
        {
            var run = await driver.Run(CrossSiloTargetKeys, Targets, Callers, round, i == rounds - 1 ? latencyCalls : 0);
            crossRounds.Add(run.CallsPerSecond);
            crossLatency = run;
        }

        var deathTimes = new List<double>();
        for (var i = 0; i < deaths; i++)
        {
            progress.Report($"kill -9 of a third silo, {i + 1} of {deaths}: time until declared dead");
            deathTimes.Add(await MeasureDeathDeclarationAsync(silo with { Name = $"C{i}" }, postgres.ConnectionString, cancellationToken));
        }

        progress.Report("baseline: bare TCP request/response over loopback");
        await using var echo = new TcpEchoBaseline();
        await echo.StartAsync();
        await CallWorkload.MeasureThroughputAsync(echo.Echo, Targets, Callers, Warmup, cancellationToken);
        var echoRounds = new List<double>();
        for (var i = 0; i < rounds; i++)
        {
            echoRounds.Add(await CallWorkload.MeasureThroughputAsync(echo.Echo, Targets, Callers, round, cancellationToken));
        }

        var echoLatency = await CallWorkload.MeasureLatencyAsync(echo.Echo, Targets, latencyCalls, latencyCalls / 10, cancellationToken);

        total.Stop();
        var echoCalls = Median(echoRounds);
        return new BenchmarkReport
        {
            Benchmark = Name,
            Quick = options.Quick,
            Duration = total.Elapsed,
            Figures =
            [
                new BenchmarkFigure("gateway_calls_per_second", "gateway_calls", "client calls via gateway", "/s",
                    Median(gatewayRounds), echoCalls, BenchmarkTarget.AtLeast(GatewayCallsTarget)),
                new BenchmarkFigure("cross_silo_calls_per_second", "cross_silo_calls", "silo-to-silo calls", "/s",
                    Median(crossRounds), echoCalls, BenchmarkTarget.AtLeast(CrossSiloCallsTarget)),
                new BenchmarkFigure("gateway_p50_us", "gateway_p50", "gateway p50 latency", "µs",
                    gatewayLatency.P50Us, echoLatency.P50Us, BenchmarkTarget.AtMost(P50Target), LowerIsBetter: true),
                new BenchmarkFigure("gateway_p99_us", "gateway_p99", "gateway p99 latency", "µs",
                    gatewayLatency.P99Us, echoLatency.P99Us, Target: null, LowerIsBetter: true),
                new BenchmarkFigure("cross_silo_p50_us", "cross_silo_p50", "silo-to-silo p50 latency", "µs",
                    crossLatency!.P50Us, echoLatency.P50Us, BenchmarkTarget.AtMost(P50Target), LowerIsBetter: true),
                new BenchmarkFigure("cross_silo_p99_us", "cross_silo_p99", "silo-to-silo p99 latency", "µs",
                    crossLatency.P99Us, echoLatency.P99Us, Target: null, LowerIsBetter: true),
                new BenchmarkFigure("death_declared_ms", "death_declared", "kill -9 to declared dead", "ms",
                    Median(deathTimes), Baseline: null, BenchmarkTarget.AtMost(DeathDeclaredTargetMs), LowerIsBetter: true),
            ],
            Notes =
            [
                "two silo processes (A, B) on loopback with membership, directory and state in a private PostgreSQL; this process is the external client.",
                $"gateway: {Callers} concurrent callers in the client over {Targets:N0} grains living on gateway A, one TCP connection; median of {rounds} round(s) of {round.TotalSeconds:0} s after a {Warmup.TotalSeconds:0} s warm-up.",
                $"silo-to-silo: {Callers} concurrent callers running inside silo A over {Targets:N0} grains living on silo B; median of {rounds} round(s).",
                $"latency: {latencyCalls:N0} calls one after the other (after {latencyCalls / 10:N0} unrecorded ones).",
                $"death: a third silo joins, is killed with SIGKILL, and the membership table is polled every 10 ms until it says Dead; median of {deaths}.",
                "baseline: 32-byte frames echoed by a bare TCP server in this process, the same callers and one connection with batched writes; ratio = ours / baseline.",
            ],
            Details = new Dictionary<string, object>
            {
                ["gateway_rounds"] = gatewayRounds,
                ["cross_silo_rounds"] = crossRounds,
                ["baseline_rounds"] = echoRounds,
                ["gateway_latency_us"] = gatewayLatency,
                ["baseline_latency_us"] = echoLatency,
                ["death_declared_ms_each"] = deathTimes,
                ["callers"] = Callers,
                ["targets"] = Targets,
            },
        };
    }

    private static async Task<double> MeasureDeathDeclarationAsync(SiloProcessOptions options, string connectionString, CancellationToken cancellationToken)
    {
        await using var victim = await SiloProcess.StartAsync(options, cancellationToken);
        var dead = Runtime.MembershipService.SiloStatus.Dead;
        var at = victim.SiloAddress.LastIndexOf('@');
        var endpoint = System.Net.IPEndPoint.Parse(victim.SiloAddress[..at]);
        var generation = int.Parse(victim.SiloAddress[(at + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        await using var database = NpgsqlDataSource.Create(connectionString);

        var killed = Stopwatch.StartNew();
        victim.Kill();
        while (killed.Elapsed < TimeSpan.FromSeconds(30))
        {
            await using var command = database.CreateCommand(
                "SELECT Status FROM OrleansMembershipTable WHERE Address = $1 AND Port = $2 AND Generation = $3");
            command.Parameters.AddWithValue(endpoint.Address.ToString());
            command.Parameters.AddWithValue(endpoint.Port);
            command.Parameters.AddWithValue(generation);
            if (await command.ExecuteScalarAsync(cancellationToken) is int status && status == (int)dead)
            {
                return killed.Elapsed.TotalMilliseconds;
            }

            await Task.Delay(10, cancellationToken);
        }

        throw new InvalidOperationException($"Silo {victim.SiloAddress} was not declared dead within 30 s of kill -9.");
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
