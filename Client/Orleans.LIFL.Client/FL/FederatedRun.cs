using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Client.Training;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL;

namespace Orleans.LIFL.Client.FL;

/// <summary>A simulated federation: how many clients, how the data is split among them, the model and the job's algorithm.</summary>
public sealed record FederatedRunOptions
{
    public string JobId { get; init; } = "fashion-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>"mlp" (784-128-10) or "softmax".</summary>
    public string Model { get; init; } = "mlp";

    public string Algorithm { get; init; } = "fedavg";

    public int Clients { get; init; } = 20;

    public int Rounds { get; init; } = 10;

    /// <summary>Clients per round (default: all).</summary>
    public int? ClientsPerRound { get; init; }

    /// <summary>"iid" or "dirichlet".</summary>
    public string Partition { get; init; } = "iid";

    /// <summary>α of the Dirichlet split: smaller is more skewed.</summary>
    public double Alpha { get; init; } = 0.5;

    public int Seed { get; init; } = 1;

    /// <summary>
    /// Local training per round. The defaults take the 784-128-10 MLP past 85% test accuracy in 10 IID rounds of 20
    /// clients (86.2-86.4% over seeds 1-3 here); one epoch at batch 32 and 0.05 stays near 82.5%.
    /// </summary>
    public TrainingSettings Training { get; init; } = new() { Epochs = 3, BatchSize = 16, LearningRate = 0.1 };

    public TimeSpan RoundDeadline { get; init; } = TimeSpan.FromMinutes(5);

    public AlgorithmSettings Settings { get; init; } = new();

    /// <summary>Examples of the training set used (default: all 60,000), for quick runs.</summary>
    public int? TrainingExamples { get; init; }

    public string? Problem()
    {
        var model = Model.ToLowerInvariant();
        var partition = Partition.ToLowerInvariant();
        return model is not ("mlp" or "softmax") ? $"model '{Model}' is not one of mlp, softmax"
            : partition is not ("iid" or "dirichlet") ? $"partition '{Partition}' is not one of iid, dirichlet"
            : Clients < 1 ? $"clients is {Clients}; it must be at least 1"
            : Rounds < 1 ? $"rounds is {Rounds}; it must be at least 1"
            : ClientsPerRound is < 1 || ClientsPerRound > Clients ? $"clients per round is {ClientsPerRound}; it must be between 1 and {Clients}"
            : Alpha <= 0 || double.IsNaN(Alpha) ? $"alpha is {Alpha}; it must be positive"
            : TrainingExamples is < 1 ? $"training examples is {TrainingExamples}; it must be positive"
            : null;
    }
}

/// <summary>One published round as a run reports it.</summary>
public sealed record FederatedRoundResult(int Round, double Accuracy, double AggregationMs, double RoundMs, int Accepted, int Rejected);

public sealed record FederatedRunResult(string JobId, IReadOnlyList<FederatedRoundResult> Rounds, double FinalAccuracy, TimeSpan Duration);

/// <summary>Where a run is, for a progress display.</summary>
/// <param name="Status">The job's status now.</param>
/// <param name="Published">Set when a round was just published and evaluated.</param>
public sealed record FederatedRunProgress(JobStatus Status, FederatedRoundResult? Published);

/// <summary>
/// Runs a federated job end to end on Fashion-MNIST: splits the training set among simulated clients, creates the
/// job with the model's initial weights, runs one <see cref="FederatedTrainer"/> per client, and evaluates every
/// published global model on the 10,000 test images (reporting the accuracy to the job).
/// </summary>
public static class FederatedRun
{
    public static async Task<FederatedRunResult> RunAsync(
        IGrainFactory grains, SharedBufferPool pool, FederatedRunOptions options, IProgress<FederatedRunProgress>? progress, ILogger? logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Problem() is { } problem)
        {
            throw new ArgumentException($"Federated run: {problem}.", nameof(options));
        }

        var clock = Stopwatch.StartNew();
        var train = FashionMnist.Load(FashionMnistSplit.Train);
        var test = FashionMnist.Load(FashionMnistSplit.Test);
        if (options.TrainingExamples is { } examples && examples < train.Count)
        {
            train = train.Subset(Enumerable.Range(0, examples).ToArray());
        }

        var shares = options.Partition.Equals("dirichlet", StringComparison.OrdinalIgnoreCase)
            ? Partitioning.Dirichlet(train.Labels, train.Classes, options.Clients, options.Alpha, options.Seed)
            : Partitioning.Iid(train.Count, options.Clients, options.Seed);
        IClassifier model = options.Model.Equals("softmax", StringComparison.OrdinalIgnoreCase) ? new SoftmaxRegression() : new MultilayerPerceptron();

        var perRound = options.ClientsPerRound ?? options.Clients;
        var definition = new FlJobDefinition
        {
            Model = model.Spec,
            Algorithm = options.Algorithm,
            Settings = options.Settings,
            Rounds = options.Rounds,
            ClientsPerRound = perRound,
            MinUpdates = Math.Max(1, perRound / 2),
            GoalUpdates = options.Algorithm.Equals("fedbuff", StringComparison.OrdinalIgnoreCase) ? perRound : perRound,
            RoundDeadline = options.RoundDeadline,
            Seed = options.Seed,
            Training = options.Training,
        };

        var job = grains.GetGrain<IFlJobGrain>(options.JobId);
        using (var initial = pool.Rent(model.Spec.Bytes))
        {
            model.Initialize(initial.AsSpan<float>(), options.Seed);
            await job.Create(definition, initial);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var trainers = shares.Select((indices, i) => new FederatedTrainer(
            grains, pool, options.JobId, $"client{i:D3}", new ClassifierTrainer(model, train, indices, options.Seed + i), logger: logger)).ToList();
        var running = trainers.Select(t => Task.Run(() => t.RunAsync(stop.Token), stop.Token)).ToList();

        var results = new List<FederatedRoundResult>();
        try
        {
            var known = -1L;
            var evaluated = 0L;
            while (true)
            {
                var status = await job.WaitForProgress(known, TimeSpan.FromSeconds(10)).WaitAsync(cancellationToken);
                known = status.Progress;
                FederatedRoundResult? published = null;
                foreach (var metrics in status.History.Where(m => m.ModelVersion > evaluated).OrderBy(m => m.ModelVersion))
                {
                    var accuracy = await EvaluateAsync(job, model, test, metrics.ModelVersion);
                    await job.ReportAccuracy(metrics.ModelVersion, accuracy);
                    published = new FederatedRoundResult(metrics.Round, accuracy, metrics.AggregationMilliseconds, metrics.RoundMilliseconds, metrics.Accepted, metrics.Rejected);
                    results.Add(published);
                    evaluated = metrics.ModelVersion;
                }

                progress?.Report(new FederatedRunProgress(status, published));
                if (status.Phase == JobPhase.Completed && evaluated >= status.ModelVersion)
                {
                    break;
                }

                if (running.FirstOrDefault(t => t.IsFaulted) is { } failed)
                {
                    await failed; // a trainer's failure ends the run with its error
                }
            }

            await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(running.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
        }

        return new FederatedRunResult(options.JobId, results, results.Count > 0 ? results[^1].Accuracy : 0, clock.Elapsed);
    }

    private static async Task<double> EvaluateAsync(IFlJobGrain job, IClassifier model, LabeledImages test, long version)
    {
        using var weights = await job.GetModel(version);
        return await Task.Run(() => model.Accuracy(weights.AsSpan<float>(), test));
    }
}
