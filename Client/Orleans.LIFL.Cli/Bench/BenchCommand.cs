using System.CommandLine;
using System.Diagnostics;
using Orleans.LIFL.Benchmarks.Harness;
using Orleans.LIFL.Hosting;
using Spectre.Console;

namespace Orleans.LIFL.Cli.Bench;

/// <summary><c>lifl bench NAME [--json FILE] [--quick]</c>: runs one benchmark of the registry and prints its table.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("name")
        {
            Description = $"The benchmark to run: {string.Join(", ", BenchmarkRegistry.All.Select(b => b.Name))}.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the figures as one JSON object to FILE.", HelpName = "FILE" };
        var quick = new Option<bool>("--quick") { Description = "A short run with smaller counts (checks that it works; noisier figures)." };
        var clients = new Option<int?>("--clients") { Description = "Clients to simulate (round: trainers; default 100)." };
        var parameters = new Option<int?>("--params") { Description = "Model parameters (round: float32 values per update; default 11,689,512)." };
        var command = new Command("bench", "Run a benchmark: our figures, a baseline measured in the same run, and the ratios.")
        {
            name,
            json,
            quick,
            clients,
            parameters,
        };
        command.SetAction((parseResult, cancellationToken) =>
        {
            var requested = parseResult.GetValue(name);
            if (requested is null || !BenchmarkRegistry.TryGet(requested, out var benchmark))
            {
                WriteUnknown(requested);
                return Task.FromResult(ExitCodes.UsageError);
            }

            var options = new BenchmarkOptions(parseResult.GetValue(quick), parseResult.GetValue(clients), parseResult.GetValue(parameters));
            if (options.Clients is < 1 || options.Parameters is < 1)
            {
                ErrorConsole.Instance.MarkupLine("[red]error:[/] --clients and --params must be positive.");
                return Task.FromResult(ExitCodes.UsageError);
            }

            var jsonFile = parseResult.GetValue(json);
            return LiflCommandLine.RunAsync(token => RunAsync(benchmark, options, jsonFile, token), cancellationToken);
        });
        return command;
    }

    private static void WriteUnknown(string? requested)
    {
        var error = ErrorConsole.Instance;
        error.MarkupLine(requested is null
            ? "[red]error:[/] name the benchmark to run."
            : $"[red]error:[/] there is no benchmark named '{Markup.Escape(requested)}'.");
        error.MarkupLine("Known benchmarks:");
        foreach (var benchmark in BenchmarkRegistry.All)
        {
            error.MarkupLine($"  [bold]{Markup.Escape(benchmark.Name)}[/]  {Markup.Escape(benchmark.Description)}");
        }
    }

    private static async Task<int> RunAsync(IBenchmark benchmark, BenchmarkOptions options, FileInfo? jsonFile, CancellationToken cancellationToken)
    {
        if (!MachineDescription.IsOptimized(benchmark.GetType().Assembly) || !MachineDescription.IsOptimized(typeof(SiloHostingExtensions).Assembly))
        {
            throw new CommandFailedException("benchmarks must run in a Release build: use ./lifl bench, or dotnet run -c Release.");
        }

        AnsiConsole.Write(new Rule($"[bold]lifl bench {Markup.Escape(benchmark.Name)}[/]{(options.Quick ? " (quick)" : "")}").LeftJustified());
        AnsiConsole.MarkupLine(Markup.Escape(benchmark.Description));
        var clock = Stopwatch.StartNew();
        var report = await ConsoleStatus.RunAsync("starting", context =>
            benchmark.RunAsync(options, new PhaseProgress(context, clock), cancellationToken));

        AnsiConsole.WriteLine();
        AnsiConsole.Write(BenchmarkReportTable.Render(report));
        foreach (var note in report.Notes)
        {
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape(note)}[/]");
        }

        var missed = report.Figures.Count(f => f.Passed == false);
        AnsiConsole.MarkupLine(missed == 0
            ? $"[green]all targets met[/] ({report.Duration.TotalSeconds:0.0} s)"
            : $"[red]{missed} target(s) missed[/] ({report.Duration.TotalSeconds:0.0} s)");

        if (jsonFile is not null)
        {
            if (jsonFile.Directory is { Exists: false } directory)
            {
                directory.Create();
            }

            await File.WriteAllTextAsync(jsonFile.FullName, BenchmarkReportJson.ToJsonText(report) + Environment.NewLine, cancellationToken);
            AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(jsonFile.FullName)}[/]");
        }

        return ExitCodes.Success;
    }

    /// <summary>Leaves a timestamped line for each phase, and shows the running one in the status line if there is one.</summary>
    private sealed class PhaseProgress(StatusContext? context, Stopwatch clock) : IProgress<string>
    {
        public void Report(string value)
        {
            context?.Status(Markup.Escape(value));
            AnsiConsole.MarkupLine($"[grey]{clock.Elapsed.TotalSeconds,6:0.0}s  {Markup.Escape(value)}[/]");
        }
    }
}
