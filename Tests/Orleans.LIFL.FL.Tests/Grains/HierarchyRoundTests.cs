using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Grains.FL.Hierarchy;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.Serialization;
using Orleans.LIFL.TestGrains.FL;
using Orleans.LIFL.TestingHost;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Grains;

/// <summary>LIFL's aggregation on grains: hierarchy, eagerness, warm reuse, locality-aware placement, zero copies after receipt.</summary>
public sealed class HierarchyRoundTests
{
    /// <summary>The same updates give the same model whether aggregated by a hierarchy or one aggregator, eagerly or lazily.</summary>
    [Fact]
    public async Task Hierarchical_flat_eager_and_lazy_aggregation_agree()
    {
        await using var bed = await FlTestBed.StartAsync(silos: 3);
        var models = new List<float[]>();
        float[]? expected = null;
        foreach (var (hierarchical, eager) in new[] { (true, true), (true, false), (false, true), (false, false) })
        {
            var jobId = FlTestBed.NewJobId();
            var definition = FlTestBed.Definition(clientsPerRound: 12, rounds: 1) with
            {
                Aggregation = new AggregationSettings { Hierarchical = hierarchical, Eager = eager, FanOut = 2 },
            };
            var (_, initial) = await bed.CreateJobAsync(jobId, definition);
            var updates = await SubmitFromEverySiloAsync(bed, jobId, clients: 12);
            var metrics = (await bed.WaitForVersionAsync(jobId, 1)).History[0];

            // Sessions on all three silos: a leaf each at least, and with a fan-out of 2 a middle level above them.
            Assert.Equal(hierarchical ? 3 : 1, metrics.HierarchyDepth);
            Assert.Equal(12, metrics.Accepted);
            models.Add(await bed.ModelAsync(jobId, 1));
            expected ??= FlTestBed.FedAvg(initial, updates);
        }

        Assert.All(models, model => FlTestBed.AssertClose(expected!, model));
    }

    /// <summary>Updates that arrive together are folded in passes of up to four: the model is the FedAvg of all of them, each once.</summary>
    [Fact]
    public async Task Updates_arriving_together_are_each_folded_in_once()
    {
        await using var bed = await FlTestBed.StartAsync();
        var jobId = FlTestBed.NewJobId();
        var model = new ModelSpec([new TensorSpec("w", [300, 301])]);
        var initial = new float[model.Parameters];
        using (var buffer = bed.Buffer(initial))
        {
            await bed.Job(jobId).Create(FlTestBed.Definition(clientsPerRound: 17, rounds: 1) with { Model = model }, buffer);
        }

        var clients = await bed.JoinAsync(jobId, 17);
        await bed.WaitForAsync(jobId, s => s.Selected.Length == 17, "selection");
        var updates = clients.Select((c, i) => (Delta: FlTestBed.Delta(i, model.Parameters), Examples: (long)(i + 1))).ToList();
        await Task.WhenAll(clients.Select((c, i) => bed.SubmitAsync(jobId, c, 1, updates[i].Delta, updates[i].Examples, baseVersion: 0)));

        await bed.WaitForVersionAsync(jobId, 1);
        FlTestBed.AssertClose(FlTestBed.FedAvg(initial, updates), await bed.ModelAsync(jobId, 1), 1e-4);
    }

    /// <summary>Round 2 reuses round 1's aggregators, warm (no new activation); with no warm window every round starts them cold.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Aggregators_are_reused_warm_across_rounds(bool warm)
    {
        await using var bed = await FlTestBed.StartAsync(silos: 2);
        var jobId = FlTestBed.NewJobId();
        await bed.CreateJobAsync(jobId, FlTestBed.Definition(clientsPerRound: 4, rounds: 2) with
        {
            Aggregation = new AggregationSettings { WarmWindow = warm ? AggregationSettings.DefaultWarmWindow : TimeSpan.Zero },
        });
        for (var round = 1; round <= 2; round++)
        {
            await SubmitFromEverySiloAsync(bed, jobId, clients: 4, round);
            await bed.WaitForVersionAsync(jobId, round);
        }

        var history = (await bed.Job(jobId).Status()).History;
        Assert.Equal(history[0].Aggregators, history[0].ColdStarts);
        Assert.Equal(warm ? 0 : history[1].Aggregators, history[1].ColdStarts);
        Assert.Equal(warm ? history[1].Aggregators : 0, history[1].WarmStarts);
        if (warm)
        {
            Assert.Equal(history[0].Hierarchy.Select(a => (a.Key, a.Silo)).Order(), history[1].Hierarchy.Select(a => (a.Key, a.Silo)).Order());
        }
    }

    /// <summary>
    /// On a simulated two-node cluster (silos A0, A1 on node A; B0 on node B) the locality-aware director places a
    /// grain on the silo its key names, on its node when that silo is gone, and only then elsewhere.
    /// </summary>
    [Fact]
    public async Task The_locality_aware_director_keeps_grains_on_their_silo_then_their_node()
    {
        var (poolA, poolB) = ("t" + Guid.NewGuid().ToString("N")[..12], "t" + Guid.NewGuid().ToString("N")[..12]);
        await using var cluster = await InProcessTestCluster.StartAsync(options =>
        {
            options.InitialSilosCount = 1;
            options.ConfigureSilo = silo => silo.AddMemoryGrainStorageAsDefault().Configure<DataplaneOptions>(d => (d.NodeId, d.PoolName) = ("nodeA", poolA));
        });
        var a0 = cluster.Silos[0];
        var a1 = await cluster.StartAdditionalSiloAsync();
        var b0 = await cluster.StartAdditionalSiloAsync(s => s.Configure<DataplaneOptions>(d => (d.NodeId, d.PoolName) = ("nodeB", poolB)));
        var gone = "127.0.0.1:1@1"; // a silo address no active silo has

        async Task<string> PlacedAsync(InProcessSiloHandle caller, string node, string silo, string name) =>
            await caller.GrainFactory.GetGrain<ILocalityProbeGrain>(LocalityAwarePlacement.Key(node, silo, name)).Silo();

        Assert.Equal(a1.Address.ToString(), await PlacedAsync(b0, "nodeA", a1.Address.ToString(), "named-silo"));
        Assert.Equal(b0.Address.ToString(), await PlacedAsync(a0, "nodeB", gone, "same-node"));
        Assert.Contains(await PlacedAsync(b0, "nodeA", gone, "node-a"), new[] { a0.Address.ToString(), a1.Address.ToString() });
        Assert.Contains(await PlacedAsync(a0, "nodeC", gone, "anywhere"), cluster.Silos.Select(s => s.Address.ToString()));
    }

    /// <summary>
    /// Updates from trainers on another node are copied once, from the socket into the silo's pool; from there to
    /// the leaf and up the hierarchy only handles and descriptors move: the round copies exactly the updates' bytes.
    /// </summary>
    [Fact]
    public async Task After_receipt_no_byte_of_an_update_is_copied()
    {
        const string Secret = "hierarchy-copy-test-secret-0123";
        var pool = "t" + Guid.NewGuid().ToString("N")[..12];
        await using var cluster = await InProcessTestCluster.StartAsync(options =>
        {
            options.InitialSilosCount = 2;
            options.TcpSecret = Secret;
            options.ConfigureSilo = silo => silo.AddMemoryGrainStorageAsDefault().Configure<DataplaneOptions>(d => (d.PoolName, d.Ebpf) = (pool, false));
        });
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Configuration["Lifl:Cluster:Secret"] = Secret;
        builder.Configuration["Lifl:Dataplane:NodeId"] = "trainer-machine";
        builder.Configuration["Lifl:Dataplane:PoolName"] = "t" + Guid.NewGuid().ToString("N")[..12];
        builder.UseLiflClient(client => client.UseStaticGateways(cluster.GatewayEndpoints[0]));
        using var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        var client = host.Services.GetRequiredService<IClusterClient>();
        var trainerPool = host.Services.GetRequiredService<SharedBufferPool>();

        var model = new ModelSpec([new TensorSpec("w", [256, 256])]);
        var jobId = FlTestBed.NewJobId();
        using (var initial = trainerPool.Rent(model.Bytes))
        {
            initial.Span.Clear();
            await client.GetGrain<IFlJobGrain>(jobId).Create(FlTestBed.Definition(clientsPerRound: 6, rounds: 1) with { Model = model }, initial);
        }

        for (var i = 0; i < 6; i++)
        {
            await client.GetGrain<IClientSessionGrain>($"{jobId}/c{i}").Join();
        }

        var job = client.GetGrain<IFlJobGrain>(jobId);
        var status = await job.Status();
        while (status.Selected.Length < 6)
        {
            status = await job.WaitForChange(status.Revision, TimeSpan.FromSeconds(5));
        }

        for (var i = 0; i < 6; i++)
        {
            using var update = trainerPool.Rent(model.Bytes);
            update.AsSpan<float>().Fill(i * 0.01f);
            await client.GetGrain<IClientSessionGrain>($"{jobId}/c{i}").Submit(
                new UpdateSubmission { UpdateId = $"u{i}", Round = 1, BaseVersion = 0, Examples = 10 }, update);
        }

        while (status.ModelVersion < 1)
        {
            status = await job.WaitForChange(status.Revision, TimeSpan.FromSeconds(5));
        }

        var metrics = status.History[0];
        Assert.Equal(6L * model.Bytes, metrics.BytesCopied);
        Assert.True(metrics.CpuSeconds > 0, $"the round's CPU seconds were {metrics.CpuSeconds}");
    }

    /// <summary>
    /// Updates sent as managed arrays (clients without a pool, and the round benchmark's copy ablation) are checked and
    /// aggregated like buffers: the model is their FedAvg, a wrong length is refused as such, and each accepted array
    /// counts its bytes as copied into the pool.
    /// </summary>
    [Fact]
    public async Task Updates_sent_as_arrays_are_aggregated_like_buffers()
    {
        await using var bed = await FlTestBed.StartAsync(silos: 2);
        var jobId = FlTestBed.NewJobId();
        var (_, initial) = await bed.CreateJobAsync(jobId, FlTestBed.Definition(clientsPerRound: 4, rounds: 1));
        await bed.JoinAsync(jobId, 4);
        var status = await bed.WaitForAsync(jobId, s => s.Selected.Length == 4, "the selection");

        var refused = await Assert.ThrowsAsync<UpdateRejectedException>(() => bed.Session(jobId, "c0").SubmitValues(
            new UpdateSubmission { UpdateId = "short", Round = 1, BaseVersion = status.ModelVersion, Examples = 5 }, new float[7].AsImmutable()));
        Assert.Equal(RejectionReason.WrongShape, refused.Reason);

        var updates = new List<(float[] Delta, long Examples)>();
        for (var i = 0; i < 4; i++)
        {
            var delta = FlTestBed.Delta(40 + i);
            await bed.Session(jobId, $"c{i}").SubmitValues(
                new UpdateSubmission { UpdateId = $"a{i}", Round = 1, BaseVersion = status.ModelVersion, Examples = 5 + i }, delta.AsImmutable());
            updates.Add((delta, 5 + i));
        }

        var metrics = (await bed.WaitForVersionAsync(jobId, 1)).History[0];
        FlTestBed.AssertClose(FlTestBed.FedAvg(initial, updates), await bed.ModelAsync(jobId, 1));
        Assert.Equal((4, 1), (metrics.Accepted, metrics.Rejected));
        Assert.True(metrics.BytesCopied >= 4L * FlTestBed.TinyModel.Bytes, $"the round copied {metrics.BytesCopied} bytes");
    }

    /// <summary>Each client submits from a different silo in turn (its session lives where its call enters).</summary>
    private static async Task<List<(float[] Delta, long Examples)>> SubmitFromEverySiloAsync(FlTestBed bed, string jobId, int clients, int round = 1)
    {
        var silos = bed.Cluster.Silos;
        var status = await bed.Job(jobId).Status();
        var updates = new List<(float[], long)>();
        for (var i = 0; i < clients; i++)
        {
            var entry = silos[i % silos.Count].GrainFactory;
            if (round == 1)
            {
                await entry.GetGrain<IClientSessionGrain>($"{jobId}/c{i}").Join();
            }
        }

        status = await bed.WaitForAsync(jobId, s => s.Round == round && s.Selected.Length == clients, $"round {round}'s selection");
        for (var i = 0; i < clients; i++)
        {
            var delta = FlTestBed.Delta((round * 100) + i);
            using var buffer = bed.Buffer(delta);
            await silos[i % silos.Count].GrainFactory.GetGrain<IClientSessionGrain>($"{jobId}/c{i}").Submit(
                new UpdateSubmission { UpdateId = $"c{i}-r{round}", Round = round, BaseVersion = status.ModelVersion, Examples = 10 + i }, buffer);
            updates.Add((delta, 10 + i));
        }

        return updates;
    }
}
