using System.CommandLine;
using Orleans.LIFL.Client.FL;
using Orleans.LIFL.Grains.FL;

namespace Orleans.LIFL.Cli.Fl;

/// <summary><c>lifl fl run</c>: a federated job on Fashion-MNIST with simulated clients, embedded or against a cluster.</summary>
internal static class FlCommand
{
    public static Command Create()
    {
        var algorithm = new Option<string>("--algorithm") { Description = $"Server algorithm: {string.Join(", ", FlJobDefinition.Algorithms)}.", DefaultValueFactory = _ => "fedavg" };
        var model = new Option<string>("--model") { Description = "mlp (784-128-10) or softmax.", DefaultValueFactory = _ => "mlp" };
        var clients = new Option<int>("--clients") { Description = "Simulated clients.", DefaultValueFactory = _ => 20 };
        var perRound = new Option<int?>("--clients-per-round") { Description = "Clients selected per round (default: all)." };
        var rounds = new Option<int>("--rounds") { Description = "Rounds (FedBuff: model versions).", DefaultValueFactory = _ => 10 };
        var partition = new Option<string>("--partition") { Description = "iid or dirichlet.", DefaultValueFactory = _ => "iid" };
        var alpha = new Option<double>("--alpha") { Description = "α of the Dirichlet split (smaller is more skewed).", DefaultValueFactory = _ => 0.5 };
        var defaults = new FederatedRunOptions().Training;
        var epochs = new Option<int>("--epochs") { Description = "Local epochs per round.", DefaultValueFactory = _ => defaults.Epochs };
        var batch = new Option<int>("--batch-size") { Description = "Local mini-batch size.", DefaultValueFactory = _ => defaults.BatchSize };
        var learningRate = new Option<double>("--lr") { Description = "Local SGD learning rate.", DefaultValueFactory = _ => defaults.LearningRate };
        var serverLearningRate = new Option<double?>("--server-lr") { Description = "Server learning rate η (default: the algorithm's)." };
        var proximal = new Option<double>("--mu") { Description = "FedProx's μ.", DefaultValueFactory = _ => 0.01 };
        var buffer = new Option<int>("--buffer") { Description = "FedBuff: publish every K updates.", DefaultValueFactory = _ => 10 };
        var clip = new Option<double?>("--dp-clip") { Description = "Central DP: clip each update to this L2 norm." };
        var noise = new Option<double>("--dp-noise") { Description = "Central DP: the noise multiplier σ.", DefaultValueFactory = _ => 1.0 };
        var examples = new Option<int?>("--train-examples") { Description = "Use only the first N training images (quick runs)." };
        var seed = new Option<int>("--seed") { Description = "Seeds the split, the initial model, selection and training.", DefaultValueFactory = _ => 1 };
        var jobId = new Option<string?>("--job") { Description = "Job id (default: a new one)." };
        var cluster = new Option<string[]>("--cluster") { Description = "A gateway (host:port) of a running cluster (repeatable); default: an embedded silo.", AllowMultipleArgumentsPerToken = false };
        var clusterId = new Option<string?>("--cluster-id") { Description = "The cluster's id (with --cluster)." };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the rounds as JSON to FILE.", HelpName = "FILE" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also show the runtime's log (information and up)." };

        var run = new Command("run", "Run a federated job on Fashion-MNIST: simulated clients train locally, the job aggregates each round; test accuracy per round.")
        {
            algorithm, model, clients, perRound, rounds, partition, alpha, epochs, batch, learningRate, serverLearningRate, proximal, buffer, clip, noise,
            examples, seed, jobId, cluster, clusterId, json, verbose,
        };
        run.SetAction((parse, cancellationToken) => LiflCommandLine.RunAsync(
            async token =>
            {
                var options = new FederatedRunOptions
                {
                    JobId = parse.GetValue(jobId) ?? new FederatedRunOptions().JobId,
                    Algorithm = parse.GetValue(algorithm)!.ToLowerInvariant(),
                    Model = parse.GetValue(model)!.ToLowerInvariant(),
                    Clients = parse.GetValue(clients),
                    ClientsPerRound = parse.GetValue(perRound),
                    Rounds = parse.GetValue(rounds),
                    Partition = parse.GetValue(partition)!.ToLowerInvariant(),
                    Alpha = parse.GetValue(alpha),
                    Seed = parse.GetValue(seed),
                    TrainingExamples = parse.GetValue(examples),
                    Training = new TrainingSettings { Epochs = parse.GetValue(epochs), BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(learningRate) },
                    Settings = new AlgorithmSettings
                    {
                        ServerLearningRate = parse.GetValue(serverLearningRate),
                        ProximalMu = parse.GetValue(proximal),
                        BufferSize = parse.GetValue(buffer),
                        DpClipNorm = parse.GetValue(clip),
                        DpNoiseMultiplier = parse.GetValue(noise),
                    },
                };
                var target = new ClusterTarget(parse.GetValue(cluster) ?? [], parse.GetValue(clusterId), Secret: null);
                await FlRunConsole.RunAsync(options, target, parse.GetValue(json), parse.GetValue(verbose), token);
                return ExitCodes.Success;
            },
            cancellationToken));

        // The round benchmark's trainer processes: commands on standard input, one answer per command on standard output.
        var benchTrainer = new Command("bench-trainer", "Benchmark trainers, driven by lifl bench round.") { Hidden = true };
        benchTrainer.SetAction((_, cancellationToken) => Benchmarks.Round.RoundTrainers.RunProcessAsync(Console.In, Console.Out, cancellationToken));

        return new Command("fl", "Federated learning on the platform.") { run, benchTrainer };
    }
}
