using System.CommandLine;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Client.MoE;
using Orleans.LIFL.Grains.MoE;
using Orleans.LIFL.Grains.MoE.Model;
using Spectre.Console;

namespace Orleans.LIFL.Cli.Moe;

/// <summary><c>lifl moe generate "text"</c>: streams a generation of the MoE model, on an embedded silo or a cluster.</summary>
internal static class MoeCommand
{
    /// <summary>The model served when no weights file is given: small enough for a laptop's CPU, large enough to show routing.</summary>
    public static readonly MoeConfig DefaultConfig = new() { Layers = 4, ModelDim = 128, Heads = 4, Experts = 8, TopK = 2, FeedForwardDim = 384, MaxSequence = 512 };

    public const ulong DefaultSeed = 42;

    public static Command Create()
    {
        var prompt = new Argument<string>("prompt") { Description = "The text to continue (byte-level tokens)." };
        var tokens = new Option<int>("--tokens") { Description = "Tokens to generate.", DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature") { Description = "0: greedy; otherwise sampled at this temperature.", DefaultValueFactory = _ => 0 };
        var seed = new Option<ulong>("--seed") { Description = "Seeds the sampling.", DefaultValueFactory = _ => 0 };
        var deployment = new Option<string>("--deployment") { Description = "The deployment to use (deployed if missing).", DefaultValueFactory = _ => "moe" };
        var weights = new Option<FileInfo?>("--weights") { Description = "A safetensors file (readable by every silo); default: seeded random weights.", HelpName = "FILE" };
        var cluster = new Option<string[]>("--cluster") { Description = "A gateway (host:port) of a running cluster (repeatable); default: an embedded silo.", AllowMultipleArgumentsPerToken = false };
        var clusterId = new Option<string?>("--cluster-id") { Description = "The cluster's id (with --cluster)." };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also show the runtime's log (information and up)." };
        var generate = new Command("generate", "Stream a generation: the session grain runs attention, the expert grains the routed feed-forward layers.")
        {
            prompt, tokens, temperature, seed, deployment, weights, cluster, clusterId, verbose,
        };
        generate.SetAction((parse, cancellationToken) => LiflCommandLine.RunAsync(
            async token =>
            {
                var target = new ClusterTarget(parse.GetValue(cluster) ?? [], parse.GetValue(clusterId), Secret: null);
                var spec = parse.GetValue(weights) is { } file
                    ? new MoeDeploymentSpec { WeightsPath = file.FullName }
                    : new MoeDeploymentSpec { Config = DefaultConfig, Seed = DefaultSeed };
                var options = new GenerationOptions { MaxTokens = parse.GetValue(tokens), Temperature = parse.GetValue(temperature), Seed = parse.GetValue(seed) };
                await GenerateAsync(target, parse.GetValue(deployment)!, spec, parse.GetValue(prompt)!, options, parse.GetValue(verbose), token);
                return ExitCodes.Success;
            },
            cancellationToken));
        return new Command("moe", "Mixture-of-Experts inference on the platform.") { generate };
    }

    private static async Task GenerateAsync(
        ClusterTarget target, string deployment, MoeDeploymentSpec spec, string prompt, GenerationOptions options, bool verbose, CancellationToken cancellationToken)
    {
        if (spec.Problem() is { } problem)
        {
            throw new CommandFailedException(problem);
        }

        using var host = ClusterTarget.BuildHost(target, verbose);
        await host.StartAsync(cancellationToken);
        try
        {
            var client = new MoeClient(host.Services.GetRequiredService<IClusterClient>());
            var status = await ConsoleStatus.RunAsync($"deploying {deployment} (loading every expert)", _ => client.DeployAsync(deployment, spec));
            var routes = status.Routes!;
            AnsiConsole.MarkupLine(
                $"deployment [bold]{Markup.Escape(deployment)}[/]: {routes.Layers} layers × {routes.Experts} experts as {routes.Replicas.Count()} replicas on "
                + $"{routes.Replicas.Select(r => r.Silo).Distinct().Count()} silo(s), {(spec.WeightsPath is null ? "seeded weights" : Markup.Escape(spec.WeightsPath))}");

            var decoder = Encoding.UTF8.GetDecoder();
            var gaps = new List<double>();
            var started = Stopwatch.GetTimestamp();
            TimeSpan? last = null;
            GeneratedToken? final = null;
            Console.Out.Write(prompt);
            await foreach (var token in client.GenerateAsync(deployment, prompt, options, cancellationToken))
            {
                Console.Out.Write(Printable(decoder, token.Byte));
                if (last is { } previous)
                {
                    gaps.Add((token.Elapsed - previous).TotalMilliseconds);
                }

                last = token.Elapsed;
                final = token;
            }

            Console.Out.WriteLine();
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            AnsiConsole.MarkupLine(
                $"[grey]{final?.Index + 1 ?? 0} tokens in {seconds:0.00} s ({(final?.Index + 1 ?? 0) / seconds:0} tok/s), median time between tokens "
                + $"{(gaps.Count > 0 ? gaps.Order().ElementAt(gaps.Count / 2) : 0):0.0} ms, session on {Markup.Escape(final?.Silo ?? "?")}[/]");
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>The text a byte completes (UTF-8, possibly nothing yet); control characters other than line breaks and tabs show as '·'.</summary>
    public static string Printable(Decoder decoder, byte value)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        Span<char> chars = stackalloc char[4];
        var count = decoder.GetChars([value], chars, flush: false);
        var text = new StringBuilder(count);
        foreach (var c in chars[..count])
        {
            text.Append(char.IsControl(c) && c is not ('\n' or '\t') ? '·' : c);
        }

        return text.ToString();
    }
}
