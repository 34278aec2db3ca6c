using System.Collections.Concurrent;
using Npgsql;
using Orleans.LIFL.Client.FL;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.TestGrains;
using Orleans.LIFL.TestGrains.FL;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;

namespace Orleans.LIFL.Cluster.Tests;

/// <summary>Federated jobs on three real silo processes with PostgreSQL: end to end, a killed aggregator, a restart of every silo.</summary>
public sealed class FlProcessTests(PostgresServer postgres)
{
    private static readonly ModelSpec TinyModel = new([new TensorSpec("w", [4, 3]), new TensorSpec("b", [3])]);

    /// <summary>A Fashion-MNIST job runs to completion on a 3-silo cluster, its trainers being clients of the cluster.</summary>
    [Fact]
    public async Task A_Fashion_MNIST_job_runs_on_a_three_silo_cluster()
    {
        await using var cluster = await ProcessCluster.StartAsync(postgres, 3);
        var (client, pool) = await cluster.ConnectWithPoolAsync();
        var options = new FederatedRunOptions
        {
            Model = "softmax",
            Clients = 6,
            Rounds = 3,
            TrainingExamples = 6_000,
            Training = new TrainingSettings { Epochs = 1, BatchSize = 16, LearningRate = 0.01 },
        };
        var result = await FederatedRun.RunAsync(client, pool, options, progress: null, logger: null, TestContext.Current.CancellationToken)
            .WaitAsync(TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken);

        Assert.Equal([1, 2, 3], result.Rounds.Select(r => r.Round));
        Assert.All(result.Rounds, r => Assert.Equal(6, r.Accepted));
        Assert.True(result.FinalAccuracy > 0.65, $"final accuracy {result.FinalAccuracy:P1}");
        Assert.True(result.Rounds[^1].Accuracy >= result.Rounds[0].Accuracy - 0.02, "accuracy fell over the rounds");

        // The job is in the cluster's database, and its latest published models (the default KeepModels: 3 of the 4 versions).
        var status = await client.GetGrain<IFlJobGrain>(options.JobId).Status();
        Assert.Equal(JobPhase.Completed, status.Phase);
        Assert.Equal(1, await CountStoredAsync(cluster, $"fljob/{options.JobId}"));
        Assert.Equal(
            ["1", "2", "3"],
            (await StoredBlobKeysAsync(cluster, $"fl/{options.JobId}/model/%")).Select(k => k[(k.LastIndexOf('/') + 1)..]).Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// kill -9 of the silo that holds the round's aggregator, after half the updates were acknowledged: the published
    /// model equals the FedAvg of every update the clients were told was accepted.
    /// </summary>
    [Fact]
    public async Task Killing_the_aggregators_silo_loses_no_acknowledged_update()
    {
        await using var cluster = await ProcessCluster.StartAsync(postgres, 3);
        var (client, pool) = await cluster.ConnectWithPoolAsync();
        var jobId = "kill-" + Guid.NewGuid().ToString("N")[..8];
        var initial = Enumerable.Range(0, TinyModel.Parameters).Select(i => 0.1f * i).ToArray();
        await CreateAsync(client, pool, jobId, Definition(clients: 6, rounds: 1), initial);

        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var trainers = Enumerable.Range(0, 6).Select(i => new KnownDeltaTrainer(i, i >= 3 ? gate.Task : Task.CompletedTask)).ToList();
        var acknowledged = new ConcurrentDictionary<string, UpdateReceipt>();
        var runs = trainers.Select((t, i) =>
        {
            var trainer = new FederatedTrainer(client, pool, jobId, $"c{i}", t);
            trainer.UpdateSettled += e =>
            {
                if (e.Receipt is { } receipt)
                {
                    acknowledged[e.ClientId] = receipt;
                }
            };
            return trainer.RunAsync(TestContext.Current.CancellationToken);
        }).ToList();

        var job = client.GetGrain<IFlJobGrain>(jobId);
        var status = await job.Status();
        while (status.Accepted < 3)
        {
            status = await job.WaitForProgress(status.Progress, TimeSpan.FromSeconds(5));
        }

        var leaf = (await job.Status()).Aggregators.First(a => a.Updates > 0);
        var holder = cluster.Silos.Single(s => s.SiloAddress == leaf.Silo);
        await holder.KillAsync();
        gate.SetResult();

        await Task.WhenAll(runs).WaitAsync(TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken);
        Assert.Equal(6, acknowledged.Count);
        var final = await job.Status();
        Assert.Equal(JobPhase.Completed, final.Phase);
        Assert.True(final.History[0].AggregatorsLost >= 1, "the aggregator's loss went unnoticed");
        Assert.Equal(6, final.History[0].Accepted);
        AssertClose(KnownDeltaTrainer.FedAvg(initial, trainers.Select(t => (t.DeltaFor(1), t.Examples))), await ModelAsync(job, 1));
    }

    /// <summary>Every silo is killed after round 2 was published; new silos on the same database resume the job at round 3.</summary>
    [Fact]
    public async Task A_job_resumes_after_every_silo_restarted()
    {
        await using var cluster = await ProcessCluster.StartAsync(postgres, 3);
        var (client, pool) = await cluster.ConnectWithPoolAsync();
        var jobId = "resume-" + Guid.NewGuid().ToString("N")[..8];
        var initial = Enumerable.Range(0, TinyModel.Parameters).Select(i => 0.1f * i).ToArray();
        await CreateAsync(client, pool, jobId, Definition(clients: 3, rounds: 4), initial);

        var before = Enumerable.Range(0, 3).Select(i => new KnownDeltaTrainer(i, rounds: 2)).ToList();
        float[] published;
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken))
        {
            var runs = before.Select((t, i) => new FederatedTrainer(client, pool, jobId, $"c{i}", t).RunAsync(stop.Token)).ToList();
            var job = client.GetGrain<IFlJobGrain>(jobId);
            var status = await job.Status();
            while (status.ModelVersion < 2)
            {
                status = await job.WaitForChange(status.Revision, TimeSpan.FromSeconds(5));
            }

            published = await ModelAsync(job, 2);
            await stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.WhenAll(runs));
        }

        await cluster.RestartEverySiloAsync();
        (client, pool) = await cluster.ConnectWithPoolAsync();
        var resumed = client.GetGrain<IFlJobGrain>(jobId);
        var after = await resumed.Status();
        Assert.Equal((3, 2L, JobPhase.Collecting), (after.Round, after.ModelVersion, after.Phase));
        Assert.Equal(published, await ModelAsync(resumed, 2));

        var again = Enumerable.Range(0, 3).Select(i => new KnownDeltaTrainer(i)).ToList();
        await Task.WhenAll(again.Select((t, i) => new FederatedTrainer(client, pool, jobId, $"c{i}", t).RunAsync(TestContext.Current.CancellationToken)))
            .WaitAsync(TimeSpan.FromMinutes(3), TestContext.Current.CancellationToken);
        var expected = initial;
        for (var round = 1; round <= 4; round++)
        {
            expected = KnownDeltaTrainer.FedAvg(expected, (round <= 2 ? before : again).Select(t => (t.DeltaFor(round), t.Examples)));
        }

        AssertClose(expected, await ModelAsync(resumed, 4));
        Assert.Equal(JobPhase.Completed, (await resumed.Status()).Phase);
    }

    private static FlJobDefinition Definition(int clients, int rounds) => new()
    {
        Model = TinyModel,
        Rounds = rounds,
        ClientsPerRound = clients,
        MinUpdates = 1,
        GoalUpdates = clients,
        RoundDeadline = TimeSpan.FromMinutes(5),
        Seed = 3,
    };

    private static async Task CreateAsync(IClusterClient client, Dataplane.SharedBufferPool pool, string jobId, FlJobDefinition definition, float[] initial)
    {
        using var buffer = pool.Rent(initial.Length * sizeof(float));
        initial.CopyTo(buffer.AsSpan<float>());
        await client.GetGrain<IFlJobGrain>(jobId).Create(definition, buffer);
    }

    private static async Task<float[]> ModelAsync(IFlJobGrain job, long version)
    {
        using var model = await job.GetModel(version);
        return model.AsSpan<float>().ToArray();
    }

    /// <summary>Rows of grain state whose grain id matches <paramref name="pattern"/> (SQL LIKE).</summary>
    private static async Task<long> CountStoredAsync(ProcessCluster cluster, string pattern)
    {
        await using var database = NpgsqlDataSource.Create(cluster.ConnectionString);
        await using var command = database.CreateCommand("SELECT count(*) FROM lifl_grain_state WHERE grain_id LIKE $1");
        command.Parameters.AddWithValue(pattern);
        return (long)(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    private static async Task<List<string>> StoredBlobKeysAsync(ProcessCluster cluster, string pattern)
    {
        await using var database = NpgsqlDataSource.Create(cluster.ConnectionString);
        await using var command = database.CreateCommand("SELECT blob_key FROM lifl_blobs WHERE blob_key LIKE $1");
        command.Parameters.AddWithValue(pattern);
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var keys = new List<string>();
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            keys.Add(reader.GetString(0));
        }

        return keys;
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])), $"value {i}: expected {expected[i]}, got {actual[i]}");
        }
    }
}
