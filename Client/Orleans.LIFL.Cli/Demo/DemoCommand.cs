using System.CommandLine;

namespace Orleans.LIFL.Cli.Demo;

/// <summary><c>lifl demo</c>: an embedded silo exercised step by step, with the grains' journal shown live.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also show the runtime's log (information and up)." };
        var command = new Command("demo", "Start an embedded silo and show activation on demand, idle collection and a stream event.")
        {
            verbose,
        };
        command.SetAction((parseResult, cancellationToken) =>
            LiflCommandLine.RunAsync(token => DemoScenario.RunAsync(parseResult.GetValue(verbose), token), cancellationToken));
        return command;
    }
}
