using System.CommandLine;
using Orleans.LIFL.Cli.Fl;
using Orleans.LIFL.Client.FL;

namespace Orleans.LIFL.Cli.Demo;

/// <summary>
/// <c>lifl demo</c>: the main job on an embedded silo — a federated job of 20 simulated clients training an MLP on
/// Fashion-MNIST with FedAvg for 10 rounds, then a few MoE generations on three embedded silos with an expert silo killed
/// mid-way (<see cref="MoeDemo"/>). <c>--tour</c> shows the runtime itself instead (activation on demand,
/// idle collection, a stream event).
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also show the runtime's log (information and up)." };
        var tour = new Option<bool>("--tour") { Description = "Show the runtime instead: activation on demand, idle collection and a stream event (about 5 s)." };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the FL rounds as JSON to FILE.", HelpName = "FILE" };
        var command = new Command("demo", "Run the main jobs embedded: FedAvg over 20 simulated Fashion-MNIST clients for 10 rounds (test accuracy per round), then MoE generations with an expert silo killed mid-way (the stall).")
        {
            verbose,
            tour,
            json,
        };
        command.SetAction((parseResult, cancellationToken) => LiflCommandLine.RunAsync(
            async token =>
            {
                if (parseResult.GetValue(tour))
                {
                    return await DemoScenario.RunAsync(parseResult.GetValue(verbose), token);
                }

                var options = new FederatedRunOptions { JobId = "demo-" + Guid.NewGuid().ToString("N")[..6] };
                await FlRunConsole.RunAsync(options, new ClusterTarget([], null, null), parseResult.GetValue(json), parseResult.GetValue(verbose), token);
                await MoeDemo.RunAsync(parseResult.GetValue(verbose), token);
                return ExitCodes.Success;
            },
            cancellationToken));
        return command;
    }
}
