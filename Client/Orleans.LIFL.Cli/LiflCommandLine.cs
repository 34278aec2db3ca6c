using System.CommandLine;
using Orleans.LIFL.Cli.Bench;
using Orleans.LIFL.Cli.Demo;
using Spectre.Console;

namespace Orleans.LIFL.Cli;

/// <summary>The commands of <c>lifl</c>.</summary>
internal static class LiflCommandLine
{
    public static RootCommand Create()
    {
        var root = new RootCommand("lifl: run the Orleans.LIFL demo, federated jobs, MoE generation, benchmarks and cluster silos.")
        {
            DemoCommand.Create(),
            BenchCommand.Create(),
            Silo.SiloCommand.Create(),
            Fl.FlCommand.Create(),
            Moe.MoeCommand.Create(),
        };
        return root;
    }

    /// <summary>Runs a command's work, turning what it throws into a message and an exit code.</summary>
    public static async Task<int> RunAsync(Func<CancellationToken, Task<int>> work, CancellationToken cancellationToken)
    {
        try
        {
            return await work(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            ErrorConsole.Instance.MarkupLine("[yellow]interrupted[/]");
            return ExitCodes.Interrupted;
        }
        catch (CommandFailedException failure)
        {
            ErrorConsole.Instance.MarkupLine($"[red]error:[/] {Markup.Escape(failure.Message)}");
            return ExitCodes.Failure;
        }
        catch (Exception error)
        {
            ErrorConsole.Instance.MarkupLine($"[red]error:[/] {Markup.Escape(error.GetType().Name)}: {Markup.Escape(error.Message)}");
            ErrorConsole.Instance.MarkupLine($"[grey]{Markup.Escape(error.ToString())}[/]");
            return ExitCodes.Failure;
        }
    }
}

/// <summary>A command could not do what it was asked; the message says what went wrong, no stack trace needed.</summary>
internal sealed class CommandFailedException(string message) : Exception(message);
