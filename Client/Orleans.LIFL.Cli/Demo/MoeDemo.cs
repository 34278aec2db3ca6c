using System.Diagnostics;
using Orleans.LIFL.Cli.Moe;
using Orleans.LIFL.Client.MoE;
using Orleans.LIFL.Grains.MoE;
using Orleans.LIFL.Grains.MoE.Model;
using Orleans.LIFL.TestingHost;
using Spectre.Console;

namespace Orleans.LIFL.Cli.Demo;

/// <summary>
/// The demo's inference part: three embedded silos serve the MoE model (every expert's primary and pre-loaded shadow on
/// two different silos), a few generations run at once, and a silo holding experts (but no session) is killed mid-way.
/// The sessions replay their expert calls to the shadows; the demo prints the stall and checks every output against a
/// local decode.
/// </summary>
internal static class MoeDemo
{
    private const int Tokens = 120;
    private const int KillAfter = 20;
    private static readonly string[] Prompts = ["The quick brown fox ", "Experts and shadows ", "Serverless inference "];

    /// <param name="keep">A silo not to kill (the one serving the dashboard).</param>
    public static async Task RunAsync(InProcessTestCluster cluster, InProcessSiloHandle keep, CancellationToken cancellationToken)
    {
        var client = new MoeClient(cluster.Client);
        var spec = new MoeDeploymentSpec { Config = MoeCommand.DefaultConfig, Seed = MoeCommand.DefaultSeed };
        var status = await ConsoleStatus.RunAsync("MoE: loading every expert's primary and shadow on 3 embedded silos", _ => client.DeployAsync("demo-moe", spec));
        AnsiConsole.MarkupLine(
            $"MoE: {status.Routes!.Layers} layers × {status.Routes.Experts} experts, each with a primary and a pre-loaded shadow on another silo "
            + $"({status.Routes.Replicas.Count()} replicas on 3 embedded silos, loaded in {status.LoadTime.TotalMilliseconds:0} ms)");

        var prompts = Prompts.Select(MoeClient.Tokenize).ToArray();
        InProcessSiloHandle? victim = null;
        var (timelines, killedAt) = await ConsoleStatus.RunAsync($"MoE: {prompts.Length} generations of {Tokens} tokens; an expert silo dies after {KillAfter}", _ =>
            ConcurrentGenerations.RunAsync(client, "demo-moe", prompts, new GenerationOptions { MaxTokens = Tokens }, KillAfter, async running =>
            {
                // A silo with experts but no session: the failure is the experts' alone.
                var sessionSilos = running.RequestIds
                    .Select(id => cluster.FindSiloHosting(cluster.Client.GetGrain<IInferenceSessionGrain>(InferenceSessions.Key(id, 0))))
                    .ToHashSet();
                victim = cluster.Silos.FirstOrDefault(s => !sessionSilos.Contains(s) && s != keep) ?? cluster.Silos.First(s => s != keep);
                await cluster.KillSiloAsync(victim);
            }, cancellationToken));

        var model = new MoeModel(MoeWeights.Random(spec.Config!, spec.Seed));
        var identical = Enumerable.Range(0, prompts.Length).All(i => timelines.Tokens(i).SequenceEqual(model.Generate(prompts[i], Tokens, new Sampling())));
        var before = timelines.Gaps(to: killedAt);
        var stall = timelines.StallAfter(killedAt, TimeSpan.FromSeconds(1));
        var after = await client.Deployment("demo-moe").Status();
        var failure = after.Events.FirstOrDefault(e => e.Kind == "expert-silo");
        AnsiConsole.MarkupLine(
            $"MoE: killed silo {Markup.Escape(victim?.ToString() ?? "?")} mid-generation: stall [bold]{stall:0.0} ms[/] "
            + $"(a token every {(before.Count > 0 ? before.Average() : 0):0.0} ms on average before); "
            + $"{failure?.PromotedExperts ?? 0} shadows promoted; {timelines.TokensPerSecond():0} tok/s overall");
        AnsiConsole.MarkupLine(identical
            ? "MoE: every token equals a failure-free local decode of the same weights [green](bit-identical)[/]"
            : "MoE: [red]the tokens differ from a local decode[/]");
        if (!identical)
        {
            throw new CommandFailedException("the MoE generations did not reproduce the failure-free output");
        }
    }
}
