using System.Text.Json;
using Orleans.LIFL.Client.MoE;
using Orleans.LIFL.Diagnostics;
using Orleans.LIFL.Grains.MoE;
using Orleans.LIFL.Grains.MoE.Model;
using Orleans.LIFL.Silo;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;

namespace Orleans.LIFL.Cluster.Tests;

/// <summary>
/// MoE generation on three real silo processes: silo 0 serves the sessions (the client's gateway), silos 1 and 2 the
/// experts (each expert's primary on one, its shadow on the other) and the deployment (on silo 2). A silo is killed
/// with SIGKILL mid-generation; the tokens must be those of a failure-free decode, without gap or repeat.
/// </summary>
public sealed class MoeProcessTests(PostgresServer postgres)
{
    private static readonly MoeConfig Config = new() { Layers = 4, ModelDim = 128, Heads = 4, Experts = 4, TopK = 2, FeedForwardDim = 384, MaxSequence = 256 };
    private static readonly int[] Prompt = MoeClient.Tokenize("Resilient experts ");
    private const int Tokens = 150;
    private const ulong Seed = 11;

    /// <summary>kill -9 of an expert silo: calls are replayed to the shadows at once and no token changes; the session never moves.</summary>
    [Fact]
    public async Task Killing_an_expert_silo_leaves_the_output_bit_identical()
    {
        await using var cluster = await ProcessCluster.StartAsync(postgres, 3, _ => ["--dashboard", "true", "--dashboard-port", "0"]);
        var (moe, deployment) = await DeployAsync(cluster, RecoveryMode.Reroute);
        var expertSilo = cluster.Silos[1];
        var tokens = await GenerateAndKillAsync(moe, deployment, expertSilo, afterTokens: 10);

        Assert.Equal(Reference(), tokens.Select(t => t.Token));
        Assert.Equal(Enumerable.Range(0, Tokens), tokens.Select(t => t.Index));
        Assert.All(tokens, t => Assert.Equal(0, t.Incarnation));
        Assert.All(tokens, t => Assert.Equal(cluster.Silos[0].SiloAddress, t.Silo));
        var status = await moe.Deployment(deployment).Status();
        Assert.Contains(status.Events, e => e.Kind == "expert-silo" && e.Silo == expertSilo.SiloAddress && e.PromotedExperts > 0);

        // The dashboard the session's silo process serves shows it all: the silo dead, the session's tokens, the failure's stall.
        Assert.All(cluster.Silos, s => Assert.NotNull(s.Dashboard));
        using var http = new HttpClient { BaseAddress = cluster.Silos[0].Dashboard };
        var started = DateTime.UtcNow;
        while (true)
        {
            // Right after the kill a grain the dashboard reads may still be on the dead silo: it keeps polling, as the page does.
            var silos = await ReadJsonAsync(http, "/api/cluster");
            var moeView = await ReadJsonAsync(http, "/api/moe");
            var view = moeView.ValueKind == JsonValueKind.Object
                ? moeView.GetProperty("deployments").EnumerateArray().FirstOrDefault(d => d.TryGetProperty("deployment", out var name) && name.GetString() == deployment)
                : default;
            var dead = silos.ValueKind == JsonValueKind.Object
                && silos.GetProperty("silos").EnumerateArray().Any(s => s.GetProperty("address").GetString() == expertSilo.SiloAddress && s.GetProperty("status").GetString() == "dead");
            var session = view.ValueKind == JsonValueKind.Object ? view.GetProperty("sessions").EnumerateArray().FirstOrDefault(s => s.GetProperty("state").GetString() == "done") : default;
            var failure = view.ValueKind == JsonValueKind.Object ? view.GetProperty("events").EnumerateArray().FirstOrDefault(e => e.GetProperty("kind").GetString() == "expert-silo") : default;
            if (dead && session.ValueKind == JsonValueKind.Object && failure.ValueKind == JsonValueKind.Object && failure.GetProperty("stall_ms").ValueKind == JsonValueKind.Number)
            {
                Assert.Equal(Tokens, session.GetProperty("tokens").GetInt32());
                Assert.Equal(expertSilo.SiloAddress, failure.GetProperty("silo").GetString());
                Assert.True(failure.GetProperty("stall_ms").GetDouble() <= session.GetProperty("max_gap_ms").GetDouble());
                break;
            }

            Assert.True(DateTime.UtcNow - started < ProcessCluster.Patience, $"the dashboard did not show the failure: dead {dead}, session {session}, failure {failure}");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>
    /// Undeploying gives the expert silos' memory back to the operating system: each silo's private resident memory
    /// drops by at least half the weights its replicas held (a process keeps freed memory committed unless it is
    /// reclaimed).
    /// </summary>
    [Fact]
    public async Task Undeploying_gives_the_expert_silos_memory_back()
    {
        await using var cluster = await ProcessCluster.StartAsync(postgres, 2);
        var big = new MoeConfig { Layers = 2, ModelDim = 256, Heads = 4, Experts = 8, TopK = 2, FeedForwardDim = 2048, MaxSequence = 64 };
        var deployment = "moe" + Guid.NewGuid().ToString("N")[..8];
        var moe = new MoeClient(await cluster.ConnectAsync([cluster.Silos[0].Gateway]));
        var status = await moe.DeployAsync(deployment, new MoeDeploymentSpec
        {
            Config = big,
            Seed = Seed,
            Shadows = 1,
            ExpertSilos = [.. cluster.Silos.Select(s => s.SiloAddress)],
        });
        Assert.Equal(DeploymentPhase.Ready, status.Phase);
        var held = cluster.Silos.ToDictionary(s => s, s => status.Routes!.Replicas.Count(r => r.Silo == s.SiloAddress) * big.ExpertParameters * 4L);
        var before = cluster.Silos.ToDictionary(s => s, s => ProcessResources.PrivateResidentBytes(s.ProcessId));

        await moe.UndeployAsync(deployment);

        foreach (var silo in cluster.Silos)
        {
            Assert.True(held[silo] > 50_000_000, $"silo {silo.SiloAddress} held {held[silo]} bytes of weights");
            var freed = before[silo] - ProcessResources.PrivateResidentBytes(silo.ProcessId);
            Assert.True(freed > held[silo] / 2, $"silo {silo.SiloAddress} held {held[silo] / 1e6:0.0} MB of weights; undeploying freed {freed / 1e6:0.0} MB of its resident memory");
        }
    }

    /// <summary>The endpoint's JSON; on an error status, its error text as a JSON string (never a bare failure).</summary>
    private static async Task<JsonElement> ReadJsonAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return response.IsSuccessStatusCode
            ? JsonDocument.Parse(body).RootElement.Clone()
            : JsonSerializer.SerializeToElement($"{(int)response.StatusCode}: {body}");
    }

    /// <summary>kill -9 of the session's silo: the session resumes on another silo from its checkpoint and the client sees the same stream.</summary>
    [Fact]
    public async Task Killing_the_session_silo_resumes_from_the_checkpoint_bit_identically()
    {
        await using var cluster = await ProcessCluster.StartAsync(postgres, 3);
        var (moe, deployment) = await DeployAsync(cluster, RecoveryMode.Reroute);
        var tokens = await GenerateAndKillAsync(moe, deployment, cluster.Silos[0], afterTokens: 40);

        Assert.Equal(Reference(), tokens.Select(t => t.Token));
        Assert.Equal(Enumerable.Range(0, Tokens), tokens.Select(t => t.Index));
        var moved = tokens.First(t => t.Incarnation > 0);
        Assert.NotEqual(cluster.Silos[0].SiloAddress, moved.Silo);
        Assert.True(moved.Index >= 40, $"the resumed session sent token {moved.Index}, which the first had sent already");
    }

    /// <summary>The restart baseline: after an expert silo is killed everything is reloaded once the cluster declares it dead, and the request still completes correctly.</summary>
    [Fact]
    public async Task The_restart_baseline_completes_after_an_expert_silo_dies()
    {
        await using var cluster = await ProcessCluster.StartAsync(postgres, 3);
        var (moe, deployment) = await DeployAsync(cluster, RecoveryMode.Restart);
        var tokens = await GenerateAndKillAsync(moe, deployment, cluster.Silos[1], afterTokens: 10);

        Assert.Equal(Reference(), tokens.Select(t => t.Token));
        Assert.Equal(Enumerable.Range(0, Tokens), tokens.Select(t => t.Index));
        var status = await moe.Deployment(deployment).Status();
        Assert.Equal(1, status.Epoch);
        Assert.Contains(status.Events, e => e.Kind == "restart" && e.Silo == cluster.Silos[1].SiloAddress);
        Assert.All(status.Routes!.Replicas, r => Assert.Equal(cluster.Silos[2].SiloAddress, r.Silo));
    }

    private static int[] Reference() => new MoeModel(MoeWeights.Random(Config, Seed)).Generate(Prompt, Tokens, new Sampling());

    /// <summary>Deploys through silo 2 (where the deployment grain then lives) with experts on silos 1 and 2; returns a client of silo 0's gateway.</summary>
    private static async Task<(MoeClient Client, string Deployment)> DeployAsync(ProcessCluster cluster, RecoveryMode recovery)
    {
        var deployment = "moe" + Guid.NewGuid().ToString("N")[..8];
        var deployer = new MoeClient(await cluster.ConnectAsync([cluster.Silos[2].Gateway]));
        var status = await deployer.DeployAsync(deployment, new MoeDeploymentSpec
        {
            Config = Config,
            Seed = Seed,
            Shadows = recovery == RecoveryMode.Reroute ? 1 : 0,
            Recovery = recovery,
            Checkpointing = recovery == RecoveryMode.Reroute,
            ExpertSilos = [cluster.Silos[1].SiloAddress, cluster.Silos[2].SiloAddress],
        });
        Assert.Equal(DeploymentPhase.Ready, status.Phase);
        return (new MoeClient(await cluster.ConnectAsync([cluster.Silos[0].Gateway])), deployment);
    }

    private static async Task<List<GeneratedToken>> GenerateAndKillAsync(MoeClient moe, string deployment, SiloProcess victim, int afterTokens)
    {
        var tokens = new List<GeneratedToken>();
        var generation = moe.GenerateAsync(deployment, Prompt, new GenerationOptions { MaxTokens = Tokens }, TestContext.Current.CancellationToken);
        await foreach (var token in generation.WithCancellation(TestContext.Current.CancellationToken))
        {
            tokens.Add(token);
            if (tokens.Count == afterTokens)
            {
                victim.Kill();
            }
        }

        Assert.True(victim.HasExited || await Task.WhenAny(victim.Exited, Task.Delay(5000, TestContext.Current.CancellationToken)) == victim.Exited);
        return tokens;
    }
}
