using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.TestGrains.FL;
using Orleans.LIFL.TestingHost;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Grains;

/// <summary>An in-process cluster with memory storage and a private shared pool, and helpers to drive a job by hand.</summary>
public sealed class FlTestBed : IAsyncDisposable
{
    /// <summary>A 15-parameter model: enough to check arithmetic exactly, small enough to write out.</summary>
    public static readonly ModelSpec TinyModel = new([new TensorSpec("w", [4, 3]), new TensorSpec("b", [3])]);

    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private FlTestBed(InProcessTestCluster cluster, SharedBufferPool pool)
    {
        Cluster = cluster;
        Pool = pool;
    }

    public InProcessTestCluster Cluster { get; }

    /// <summary>A client of the cluster (it enters through any running silo, so it survives a silo being killed).</summary>
    public IGrainFactory Grains => Cluster.Client;

    /// <summary>The test's own attachment to the silos' pool (as a trainer process of the node would have).</summary>
    public SharedBufferPool Pool { get; }

    public static async Task<FlTestBed> StartAsync(int silos = 1)
    {
        var pool = "t" + Guid.NewGuid().ToString("N")[..12];
        var cluster = await InProcessTestCluster.StartAsync(options =>
        {
            options.InitialSilosCount = silos;
            options.ConfigureSilo = silo => silo
                .AddMemoryGrainStorageAsDefault()
                .Configure<DataplaneOptions>(d => d.PoolName = pool);
        });
        return new FlTestBed(cluster, SharedBufferPool.Acquire(pool));
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        Pool.Dispose();
    }

    public static string NewJobId() => "job" + Guid.NewGuid().ToString("N")[..10];

    public IFlJobGrain Job(string jobId) => Grains.GetGrain<IFlJobGrain>(jobId);

    public IClientSessionGrain Session(string jobId, string client) => Grains.GetGrain<IClientSessionGrain>($"{jobId}/{client}");

    /// <summary>A job over <see cref="TinyModel"/> whose initial weights are 0.1·i.</summary>
    public async Task<(IFlJobGrain Job, float[] Initial)> CreateJobAsync(string jobId, FlJobDefinition definition)
    {
        var initial = Enumerable.Range(0, definition.Model.Parameters).Select(i => 0.1f * i).ToArray();
        using var buffer = Buffer(initial);
        await Job(jobId).Create(definition, buffer);
        return (Job(jobId), initial);
    }

    public static FlJobDefinition Definition(string algorithm = "fedavg", int clientsPerRound = 3, int rounds = 3) => new()
    {
        Model = TinyModel,
        Algorithm = algorithm,
        Rounds = rounds,
        ClientsPerRound = clientsPerRound,
        MinUpdates = 1,
        GoalUpdates = clientsPerRound,
        RoundDeadline = TimeSpan.FromMinutes(5),
        Seed = 7,
    };

    /// <summary>Joins the clients; returns their ids.</summary>
    public async Task<string[]> JoinAsync(string jobId, int clients, string prefix = "c")
    {
        var ids = Enumerable.Range(0, clients).Select(i => $"{prefix}{i}").ToArray();
        foreach (var id in ids)
        {
            await Session(jobId, id).Join();
        }

        return ids;
    }

    /// <summary>A shared buffer holding <paramref name="values"/>.</summary>
    public SharedBuffer Buffer(ReadOnlySpan<float> values)
    {
        var buffer = Pool.Rent((long)values.Length * sizeof(float));
        values.CopyTo(buffer.AsSpan<float>());
        return buffer;
    }

    /// <summary>A delta of the tiny model that depends on <paramref name="seed"/>.</summary>
    public static float[] Delta(int seed, int parameters = 15) => KnownDeltaTrainer.Delta(seed, parameters);

    public async Task<UpdateReceipt> SubmitAsync(string jobId, string client, int round, float[] delta, long examples, string? updateId = null, long baseVersion = -1)
    {
        using var buffer = Buffer(delta);
        var job = Job(jobId);
        var version = baseVersion >= 0 ? baseVersion : (await job.Status()).ModelVersion;
        return await Session(jobId, client).Submit(
            new UpdateSubmission { UpdateId = updateId ?? $"{client}-r{round}-{Guid.NewGuid():N}", Round = round, BaseVersion = version, Examples = examples },
            buffer);
    }

    /// <summary>The job's status once it has published <paramref name="version"/> (waiting on its changes).</summary>
    public async Task<JobStatus> WaitForVersionAsync(string jobId, long version)
    {
        var job = Job(jobId);
        var deadline = DateTime.UtcNow + Patience;
        var status = await job.Status();
        while (status.ModelVersion < version)
        {
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} did not publish version {version} (it is at {status.ModelVersion}, {status.Phase}, {status.Accepted}/{status.Goal})");
            status = await job.WaitForChange(status.Revision, TimeSpan.FromSeconds(5));
        }

        return status;
    }

    /// <summary>The job's status once <paramref name="condition"/> holds.</summary>
    public async Task<JobStatus> WaitForAsync(string jobId, Func<JobStatus, bool> condition, string what)
    {
        var job = Job(jobId);
        var deadline = DateTime.UtcNow + Patience;
        var status = await job.Status();
        while (!condition(status))
        {
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId}: {what} did not happen (round {status.Round}, {status.Phase}, {status.Accepted}/{status.Goal}, selected {status.Selected.Length})");
            status = await job.WaitForProgress(status.Progress, TimeSpan.FromSeconds(5));
        }

        return status;
    }

    public async Task<float[]> ModelAsync(string jobId, long version)
    {
        using var model = await Job(jobId).GetModel(version);
        return model.AsSpan<float>().ToArray();
    }

    public static float[] FedAvg(float[] global, IEnumerable<(float[] Delta, long Examples)> updates) => KnownDeltaTrainer.FedAvg(global, updates);

    public static void AssertClose(float[] expected, float[] actual, double tolerance = 1e-5)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * Math.Max(1, Math.Abs(expected[i])), $"value {i}: expected {expected[i]}, got {actual[i]}");
        }
    }
}
