using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Benchmarks.Round;

/// <summary>How the trainers of one benchmark mode submit.</summary>
public enum TrainerMode
{
    /// <summary>LIFL: the update in the trainer's shared pool, streamed into the silo's pool by the dataplane.</summary>
    Shared,

    /// <summary>LIFL's grains, but the update as a managed array in the call's message (the zero-copy ablation).</summary>
    Array,

    /// <summary>The serverful baseline: a managed array to the one always-on aggregator.</summary>
    Serverful,
}

/// <summary>One run a trainer process is asked for: which cluster, which job, which of its trainers.</summary>
public sealed record TrainerCommand(
    IReadOnlyList<string> Gateways,
    string ClusterId,
    string JobId,
    TrainerMode Mode,
    int Parameters,
    int Rounds,
    int FirstClient,
    int Clients);

/// <summary>
/// A process of benchmark trainers (<c>lifl fl bench-trainer</c>): it reads one <see cref="TrainerCommand"/> per line of
/// JSON on standard input, runs that many trainers against the cluster until the job is done, and answers "done" (or
/// "error ...") on standard output. The trainers of a process share one update of the given size (this benchmark
/// measures aggregation, not training); each has its own example count, so the aggregate is still a weighted mean.
/// </summary>
public static class RoundTrainers
{
    public const string Done = "done";
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static async Task<int> RunProcessAsync(TextReader input, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        while (await input.ReadLineAsync(cancellationToken) is { } line)
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                var command = JsonSerializer.Deserialize<TrainerCommand>(line, Json) ?? throw new InvalidOperationException("an empty command");
                await RunAsync(command, cancellationToken);
                await output.WriteLineAsync(Done);
            }
            catch (Exception error) when (error is not OperationCanceledException)
            {
                await output.WriteLineAsync("error " + error.Message.ReplaceLineEndings(" "));
            }

            await output.FlushAsync(cancellationToken);
        }

        return 0;
    }

    private static async Task RunAsync(TrainerCommand command, CancellationToken cancellationToken)
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration["Lifl:Cluster:Secret"] = Environment.GetEnvironmentVariable("LIFL_SECRET");
        builder.Configuration["Lifl:Cluster:ClusterId"] = command.ClusterId;

        // Another machine as far as the silos can tell: updates are streamed into their pool, as a remote trainer's are.
        builder.Configuration["Lifl:Dataplane:NodeId"] = $"trainer-{Environment.ProcessId}";
        builder.Configuration["Lifl:Dataplane:PoolName"] = $"lifl-trainer-{Environment.ProcessId}";
        builder.Configuration["Lifl:Dataplane:PoolCapacity"] = ((long)command.Parameters * sizeof(float) * 4 + (64L << 20)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        builder.UseLiflClient(client => client.UseStaticGateways([.. command.Gateways]));
        using var host = builder.Build();
        await host.StartAsync(cancellationToken);
        var grains = host.Services.GetRequiredService<IClusterClient>();

        var values = new float[command.Parameters];
        var random = new Random(command.FirstClient);
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (random.NextSingle() - 0.5f) * 1e-3f;
        }

        using var update = command.Mode == TrainerMode.Shared ? host.Services.GetRequiredService<SharedBufferPool>().Rent((long)values.Length * sizeof(float)) : null;
        if (update is not null)
        {
            values.CopyTo(update.AsSpan<float>());
        }

        var trainers = Enumerable.Range(command.FirstClient, command.Clients).Select(client => command.Mode == TrainerMode.Serverful
            ? ServerfulAsync(grains, command, client, values, cancellationToken)
            : FederatedAsync(grains, command, client, update, values, cancellationToken));
        await Task.WhenAll(trainers);
        await host.StopAsync(cancellationToken);
    }

    /// <summary>One client of a LIFL job: joins, and submits the shared update for every round it is selected in.</summary>
    private static async Task FederatedAsync(IClusterClient grains, TrainerCommand command, int client, SharedBuffer? update, float[] values, CancellationToken cancellationToken)
    {
        var session = grains.GetGrain<IClientSessionGrain>($"{command.JobId}/c{client:D4}");
        await session.Join();
        var revision = -1L;
        var submitted = 0;
        while (true)
        {
            var task = await session.NextTask(revision, TimeSpan.FromSeconds(30)).WaitAsync(cancellationToken);
            revision = task.Revision;
            if (task.Kind == TrainerTaskKind.Done)
            {
                return;
            }

            if (task.Kind == TrainerTaskKind.Wait || task.Round <= submitted)
            {
                continue;
            }

            var submission = new UpdateSubmission { UpdateId = $"c{client}-r{task.Round}", Round = task.Round, BaseVersion = task.ModelVersion, Examples = 10 + client };
            _ = update is null ? await session.SubmitValues(submission, values.AsImmutable()) : await session.Submit(submission, update);
            submitted = task.Round;
        }
    }

    /// <summary>One client of the serverful baseline: every round, the update as an array to the one aggregator.</summary>
    private static async Task ServerfulAsync(IClusterClient grains, TrainerCommand command, int client, float[] values, CancellationToken cancellationToken)
    {
        var aggregator = grains.GetGrain<IServerfulAggregatorGrain>(command.JobId);
        var round = await aggregator.WaitForRound(0, TimeSpan.Zero);
        while (round <= command.Rounds)
        {
            await aggregator.Submit(round, values.AsImmutable(), 10 + client).WaitAsync(cancellationToken);
            var submitted = round;
            while ((round = await aggregator.WaitForRound(submitted, TimeSpan.FromSeconds(30))) == submitted)
            {
            }
        }
    }
}
