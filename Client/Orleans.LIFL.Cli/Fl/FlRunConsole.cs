using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Client.FL;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Hosting;
using Spectre.Console;

namespace Orleans.LIFL.Cli.Fl;

/// <summary>Runs a <see cref="FederatedRun"/> with a progress bar per round and a line per published round, and writes its JSON.</summary>
internal static class FlRunConsole
{
    public static async Task<FederatedRunResult> RunAsync(FederatedRunOptions options, ClusterTarget target, FileInfo? json, bool verbose, CancellationToken cancellationToken)
    {
        if (options.Problem() is { } problem)
        {
            throw new CommandFailedException(problem);
        }

        using var host = ClusterTarget.BuildHost(target, verbose);
        await host.StartAsync(cancellationToken);
        try
        {
            var where = target.Gateways.Count == 0 ? "an embedded silo" : string.Join(", ", target.Gateways);
            return await RunOnAsync(
                options, host.Services.GetRequiredService<IGrainFactory>(), host.Services.GetRequiredService<SharedBufferPool>(),
                host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("FederatedRun"), where, json, cancellationToken);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Runs the job on a cluster the caller has already started (<paramref name="where"/> says which, for the header line).</summary>
    public static async Task<FederatedRunResult> RunOnAsync(
        FederatedRunOptions options, IGrainFactory grains, SharedBufferPool pool, ILogger logger, string where, FileInfo? json, CancellationToken cancellationToken)
    {
        if (options.Problem() is { } problem)
        {
            throw new CommandFailedException(problem);
        }

        AnsiConsole.MarkupLine(
            $"job [bold]{Markup.Escape(options.JobId)}[/]: {Markup.Escape(options.Algorithm)}, {options.Model} on Fashion-MNIST, {options.Clients} clients "
            + $"({Markup.Escape(options.Partition)}{(options.Partition == "dirichlet" ? $", α={options.Alpha.ToString(CultureInfo.InvariantCulture)}" : "")}), "
            + $"{options.ClientsPerRound ?? options.Clients} per round, {options.Rounds} rounds, on {Markup.Escape(where)}");

        var result = AnsiConsole.Profile.Capabilities.Interactive
            ? await AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
                .StartAsync(context => FederatedRun.RunAsync(grains, pool, options, new RoundBars(context, options.Rounds), logger, cancellationToken))
            : await FederatedRun.RunAsync(grains, pool, options, new RoundLines(), logger, cancellationToken);

        if (AnsiConsole.Profile.Capabilities.Interactive)
        {
            foreach (var round in result.Rounds)
            {
                AnsiConsole.MarkupLine(Describe(round));
            }
        }

        AnsiConsole.MarkupLine(
            $"final test accuracy [bold]{result.FinalAccuracy:P2}[/] after {result.Rounds.Count} rounds in {result.Duration.TotalSeconds:0.0} s "
            + $"(median aggregation {Median(result.Rounds.Select(r => r.AggregationMs)):0.0} ms)");
        if (json is not null)
        {
            await WriteJsonAsync(json, options, result, cancellationToken);
            AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(json.FullName)}[/]");
        }

        return result;
    }

    private static async Task WriteJsonAsync(FileInfo file, FederatedRunOptions options, FederatedRunResult result, CancellationToken cancellationToken)
    {
        if (file.Directory is { Exists: false } directory)
        {
            directory.Create();
        }

        var document = new Dictionary<string, object?>
        {
            ["job_id"] = result.JobId,
            ["algorithm"] = options.Algorithm,
            ["model"] = options.Model,
            ["clients"] = options.Clients,
            ["partition"] = options.Partition,
            ["rounds"] = result.Rounds.Select(r => new Dictionary<string, object>
            {
                ["round"] = r.Round,
                ["accuracy"] = Math.Round(r.Accuracy, 5),
                ["aggregation_ms"] = Math.Round(r.AggregationMs, 3),
                ["round_ms"] = Math.Round(r.RoundMs, 3),
                ["accepted"] = r.Accepted,
                ["rejected"] = r.Rejected,
            }).ToList(),
            ["final_accuracy"] = Math.Round(result.FinalAccuracy, 5),
            ["duration_seconds"] = Math.Round(result.Duration.TotalSeconds, 3),
        };
        await File.WriteAllTextAsync(file.FullName, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }) + Environment.NewLine, cancellationToken);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string Describe(FederatedRoundResult round) =>
        $"round {round.Round,2}: test accuracy [bold]{round.Accuracy:P2}[/], {round.Accepted} updates accepted, {round.Rejected} refused, "
        + $"aggregation {round.AggregationMs:0.0} ms, round {round.RoundMs / 1000:0.0} s";

    /// <summary>A bar per round filling with its accepted updates (an interactive terminal).</summary>
    private sealed class RoundBars(ProgressContext context, int rounds) : IProgress<FederatedRunProgress>
    {
        private readonly Dictionary<int, ProgressTask> _bars = [];

        public void Report(FederatedRunProgress value)
        {
            var status = value.Status;
            if (value.Published is { } published)
            {
                var done = Bar(published.Round, Math.Max(1, published.Accepted));
                done.Value = done.MaxValue;
                done.Description = $"round {published.Round,2}  accuracy {published.Accuracy:P2}  aggregation {published.AggregationMs:0.0} ms";
                done.StopTask();
            }

            if (status.Phase is JobPhase.Collecting or JobPhase.Aggregating && status.Round <= rounds && status.Goal > 0)
            {
                var bar = Bar(status.Round, status.Goal);
                bar.MaxValue = status.Goal;
                bar.Value = Math.Min(status.Accepted, status.Goal);
            }
        }

        private ProgressTask Bar(int round, int goal)
        {
            if (!_bars.TryGetValue(round, out var bar))
            {
                bar = context.AddTask($"round {round,2}", maxValue: goal);
                _bars[round] = bar;
            }

            return bar;
        }
    }

    /// <summary>A line per published round (a log, CI).</summary>
    private sealed class RoundLines : IProgress<FederatedRunProgress>
    {
        public void Report(FederatedRunProgress value)
        {
            if (value.Published is { } published)
            {
                AnsiConsole.MarkupLine(Describe(published));
            }
        }
    }
}
