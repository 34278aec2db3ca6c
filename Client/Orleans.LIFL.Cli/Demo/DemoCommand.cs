using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Cli.Fl;
using Orleans.LIFL.Client.FL;
using Orleans.LIFL.Dashboard;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.TestingHost;
using Spectre.Console;

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
        var exit = new Option<bool>("--exit") { Description = "Exit when the demo is done instead of serving the dashboard until Ctrl-C." };
        var command = new Command("demo", "Run the main jobs embedded: FedAvg over 20 simulated Fashion-MNIST clients for 10 rounds (test accuracy per round), then MoE generations with an expert silo killed mid-way (the stall).")
        {
            verbose,
            tour,
            json,
            exit,
        };
        command.SetAction((parseResult, cancellationToken) => LiflCommandLine.RunAsync(
            async token =>
            {
                if (parseResult.GetValue(tour))
                {
                    return await DemoScenario.RunAsync(parseResult.GetValue(verbose), token);
                }

                return await RunMainAsync(parseResult.GetValue(verbose), parseResult.GetValue(json), parseResult.GetValue(exit), token);
            },
            cancellationToken));
        return command;
    }

    /// <summary>
    /// The main demo on three embedded silos, the first serving the dashboard: the FL job, then the MoE generations with
    /// an expert silo killed. On a terminal the dashboard stays up afterwards until Ctrl-C (unless <paramref name="exit"/>).
    /// </summary>
    private static async Task<int> RunMainAsync(bool verbose, FileInfo? json, bool exit, CancellationToken cancellationToken)
    {
        var pool = "lifl-demo-" + Guid.NewGuid().ToString("N")[..8];
        var port = PortIsFree(DashboardOptions.DefaultPort) ? DashboardOptions.DefaultPort : 0;
        var first = true;
        await using var cluster = await InProcessTestCluster.StartAsync(options =>
        {
            options.InitialSilosCount = 3;
            options.ConfigureLogging = logging => logging.SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Error);
            options.ConfigureSilo = silo =>
            {
                silo.AddMemoryGrainStorageAsDefault().Configure<DataplaneOptions>(d => d.PoolName = pool);
                if (first)
                {
                    first = false;
                    silo.AddLiflDashboard(o => o.Port = port);
                }
            };
        });
        var dashboardSilo = cluster.Silos.First(s => s.Services.GetService<DashboardServer>() is not null);
        var dashboard = dashboardSilo.Services.GetRequiredService<DashboardServer>().Address;
        AnsiConsole.MarkupLine($"dashboard: [bold link]{dashboard}[/] (3 embedded silos)");

        using var attachment = SharedBufferPool.Acquire(pool);
        var logger = dashboardSilo.Services.GetRequiredService<ILoggerFactory>().CreateLogger("FederatedRun");
        var options = new FederatedRunOptions { JobId = "demo-" + Guid.NewGuid().ToString("N")[..6] };
        await FlRunConsole.RunOnAsync(options, cluster.Client, attachment, logger, "3 embedded silos", json, cancellationToken);
        await MoeDemo.RunAsync(cluster, dashboardSilo, cancellationToken);

        if (!exit && AnsiConsole.Profile.Capabilities.Interactive)
        {
            AnsiConsole.MarkupLine($"the dashboard is still at [bold link]{dashboard}[/]; Ctrl-C to stop");
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Ctrl-C: the demo is over.
            }
        }

        return ExitCodes.Success;
    }

    private static bool PortIsFree(int port)
    {
        try
        {
            using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
            probe.Start();
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}
