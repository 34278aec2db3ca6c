using System.Diagnostics;
using Orleans.LIFL.Client.MoE;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Grains.MoE;
using Orleans.LIFL.Grains.MoE.Model;
using Orleans.LIFL.TestingHost;
using Xunit;

namespace Orleans.LIFL.MoE.Tests.Grains;

/// <summary>The session, expert, deployment and checkpoint grains on a three-silo in-process cluster.</summary>
public sealed class MoeGrainTests
{
    private static readonly int[] Prompt = MoeClient.Tokenize("The quick brown fox ");

    /// <summary>Generation through session and expert grains gives exactly the tokens of a local decode of the same weights.</summary>
    [Fact]
    public async Task Generated_tokens_equal_the_local_decoding_bit_for_bit()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("d");
        var status = await bed.Client.DeployAsync(deployment, MoeTestBed.Spec());
        Assert.Equal(DeploymentPhase.Ready, status.Phase);
        Assert.All(status.Routes!.Candidates, c => Assert.Equal(2, c.Select(r => r.Silo).Distinct().Count()));

        // Each of the three silos has replayed a token to a replica on every expert silo: a failure's replays are not the first.
        foreach (var probe in status.Routes.Replicas.DistinctBy(r => r.Silo))
        {
            Assert.Equal(3, (await bed.Cluster.Client.GetGrain<IExpertGrain>(probe.Key).Ping()).Replays);
        }

        var greedy = await CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, new GenerationOptions { MaxTokens = 24 }, TestContext.Current.CancellationToken));
        Assert.Equal(MoeTestBed.Reference(Prompt, 24), greedy.Select(t => t.Token));
        Assert.Equal(Enumerable.Range(0, 24), greedy.Select(t => t.Index));

        var sampled = await CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, new GenerationOptions { MaxTokens = 16, Temperature = 0.8f, Seed = 3 }, TestContext.Current.CancellationToken));
        Assert.Equal(MoeTestBed.Reference(Prompt, 16, 0.8f, 3), sampled.Select(t => t.Token));
    }

    /// <summary>
    /// Deploying (Tarragon) plays a session failover through on every silo — a session stopped half way, the next
    /// incarnation resumed next to its checkpoint — so that a real failure's code has run before it; the rehearsals
    /// resume elsewhere than where they started and stay out of the deployment's telemetry. The baseline rehearses none.
    /// </summary>
    [Fact]
    public async Task Deploying_rehearses_a_session_failover_on_every_silo_out_of_the_telemetry()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("r");
        var status = await bed.Client.DeployAsync(deployment, MoeTestBed.Spec());
        var silos = bed.Cluster.Silos.Select(s => s.Address.ToString()).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(silos, status.Rehearsals.Select(r => r.Silo).Order(StringComparer.Ordinal));
        Assert.All(status.Rehearsals, r =>
        {
            Assert.Null(r.Problem);
            Assert.Contains(r.ResumedOn, silos);
            Assert.NotEqual(r.Silo, r.ResumedOn);
        });

        // Every rehearsed checkpoint is dropped, in both stores: the stopped first incarnation, still flushing when it is
        // given up, sends nothing more that would begin it again once its successor dropped it.
        await PoolEmptiedAsync(bed.Pool, "after the rehearsals");

        var tokens = await CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, new GenerationOptions { MaxTokens = 8, RequestId = "users-request" }, TestContext.Current.CancellationToken));
        Assert.Equal(MoeTestBed.Reference(Prompt, 8), tokens.Select(t => t.Token));
        var (telemetry, _) = await TelemetryAsync(bed, deployment, t => t.Sessions.Any(s => s.RequestId == "users-request" && s.State == "done"));
        Assert.Equal(["users-request"], telemetry.Sessions.Select(s => s.RequestId));

        var baseline = await bed.Client.DeployAsync(MoeTestBed.NewName("b"), MoeTestBed.Spec(RecoveryMode.Restart));
        Assert.Equal(DeploymentPhase.Ready, baseline.Phase);
        Assert.Empty(baseline.Rehearsals);
    }

    /// <summary>
    /// A Deploy that stops half way — here an expert's tensor missing from the weights file, as while the file is still
    /// being copied — fails naming the tensor, leaves the deployment Failed (a generation is refused at once, saying
    /// why), and deploying the same spec again once the file is whole finishes it.
    /// </summary>
    [Fact]
    public async Task A_deploy_that_stops_half_way_fails_naming_why_and_finishes_when_deployed_again()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var bed = await MoeTestBed.StartAsync();
        var directory = Directory.CreateTempSubdirectory("lifl-moe-deploy-");
        try
        {
            var path = Path.Combine(directory.FullName, "weights.safetensors");
            MoeWeights.Random(MoeTestBed.Config, MoeTestBed.Seed).Save(path);
            var whole = await File.ReadAllBytesAsync(path, cancellationToken);
            const string Missing = "model.layers.1.block_sparse_moe.experts.0.w2.weight";
            List<(string Name, IReadOnlyList<long> Shape, float[] Values)> kept;
            IReadOnlyDictionary<string, string> metadata;
            using (var file = SafeTensorsFile.Open(path))
            {
                Assert.Contains(Missing, file.Tensors.Keys);
                kept = [.. file.Tensors.Values.Where(t => t.Name != Missing).Select(t => (t.Name, t.Shape, file.ReadFloat32(t.Name)))];
                metadata = file.Metadata;
            }

            SafeTensorsFile.Write(path, kept, metadata);
            var deployment = MoeTestBed.NewName("half");
            var spec = new MoeDeploymentSpec { WeightsPath = path };

            var failed = await Assert.ThrowsAnyAsync<Exception>(() => bed.Client.DeployAsync(deployment, spec));
            Assert.Contains(Missing, failed.Message, StringComparison.Ordinal);
            Assert.Contains("Deploy it again", failed.Message, StringComparison.Ordinal);
            var status = await bed.Client.Deployment(deployment).Status();
            Assert.Equal(DeploymentPhase.Failed, status.Phase);
            Assert.Contains(Missing, status.Problem, StringComparison.Ordinal);
            var other = await Assert.ThrowsAnyAsync<Exception>(() => bed.Client.DeployAsync(deployment, MoeTestBed.Spec()));
            Assert.Contains("undeploy it first", other.Message, StringComparison.Ordinal);

            var watch = Stopwatch.StartNew();
            var refused = await Assert.ThrowsAsync<MoeGenerationException>(() => CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, cancellationToken: cancellationToken)));
            Assert.Contains("did not finish", refused.Message, StringComparison.Ordinal);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"refusing a generation on a failed deployment took {watch.Elapsed}: it was retried");

            await File.WriteAllBytesAsync(path, whole, cancellationToken);
            var ready = await bed.Client.DeployAsync(deployment, spec);
            Assert.Equal(DeploymentPhase.Ready, ready.Phase);
            Assert.Null(ready.Problem);
            var tokens = await CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, new GenerationOptions { MaxTokens = 12 }, cancellationToken));
            Assert.Equal(MoeTestBed.Reference(Prompt, 12), tokens.Select(t => t.Token));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>Every position's KV segment reaches the store, committed in order with increasing sequence numbers.</summary>
    [Fact]
    public async Task Checkpoints_are_committed_in_order()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("d");
        await bed.Client.DeployAsync(deployment, MoeTestBed.Spec());
        var (session, opened, requestId, tokens) = await RunFirstAsync(bed, deployment, maxTokens: 20);
        Assert.Equal(KvCheckpointStores.Key(deployment, bed.Cluster.FindSiloHosting(session)!.Address.ToString()), opened.CheckpointStore);

        var store = bed.Cluster.Client.GetGrain<IKvCheckpointStoreGrain>(opened.CheckpointStore!);
        var positions = Prompt.Length + 20 - 1;
        KvStoreStatus status;
        var waited = DateTime.UtcNow;
        while ((status = await store.Status(requestId)).CommittedThrough < positions - 1)
        {
            Assert.True(DateTime.UtcNow - waited < TimeSpan.FromSeconds(20), $"the store committed through {status.CommittedThrough} of {positions - 1}");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        Assert.NotEmpty(status.Commits);
        Assert.True(status.Commits.Zip(status.Commits.Skip(1)).All(p => p.Second.Sequence == p.First.Sequence + 1 && p.Second.Through > p.First.Through));
        Assert.Equal(positions - 1, status.Commits[^1].Through);
        Assert.NotEqual(bed.Cluster.FindSiloHosting(session)?.Address.ToString(), status.Silo);

        using var checkpoint = await store.Restore(requestId);
        Assert.Equal((0, positions), (checkpoint.Segments!.From, checkpoint.Segments.Count));
        Assert.Equal(tokens, checkpoint.Segments.Outputs.Where(o => o >= 0));
    }

    /// <summary>
    /// A request that opts out of checkpointing on a checkpointing deployment decodes the same tokens, reports no store
    /// to resume from and leaves nothing in its silo's store.
    /// </summary>
    [Fact]
    public async Task A_request_may_go_without_checkpoints()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("d");
        await bed.Client.DeployAsync(deployment, MoeTestBed.Spec());
        var (session, opened, requestId, tokens) = await RunFirstAsync(bed, deployment, maxTokens: 40, checkpoint: false);
        Assert.Null(opened.CheckpointStore);
        Assert.Equal(MoeTestBed.Reference(Prompt, 40), tokens);
        var store = bed.Cluster.Client.GetGrain<IKvCheckpointStoreGrain>(KvCheckpointStores.Key(deployment, bed.Cluster.FindSiloHosting(session)!.Address.ToString()));
        Assert.Equal(-1, (await store.Status(requestId)).CommittedThrough);

        var viaClient = await CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, new GenerationOptions { MaxTokens = 24, Checkpoint = false }, TestContext.Current.CancellationToken));
        Assert.Equal(MoeTestBed.Reference(Prompt, 24), viaClient.Select(t => t.Token));
    }

    /// <summary>
    /// A node's pool with no room left for a batch holds the checkpoint back, never the decoding: the session's tokens are
    /// the local decode's, and the store commits nothing.
    /// </summary>
    [Fact]
    public async Task A_full_shared_pool_holds_the_checkpoint_back_not_the_tokens()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("d");
        await bed.Client.DeployAsync(deployment, MoeTestBed.Spec());
        var pool = bed.Pool;

        // The deployment's rehearsals drop their checkpoints without waiting: once their bytes are back, nothing else
        // frees room in the pool while the session runs.
        await PoolEmptiedAsync(pool, "after the deploy");
        var filler = new List<SharedBuffer>();
        try
        {
            for (var size = SharedBufferPool.MaxBufferLength; size >= SharedBufferPool.MinBufferLength;)
            {
                try
                {
                    filler.Add(pool.Rent(size));
                }
                catch (DataplaneException)
                {
                    size /= 2;
                }
            }

            var (_, opened, requestId, tokens) = await RunFirstAsync(bed, deployment, maxTokens: 40);
            Assert.Equal(MoeTestBed.Reference(Prompt, 40), tokens);
            Assert.Equal(-1, (await bed.Cluster.Client.GetGrain<IKvCheckpointStoreGrain>(opened.CheckpointStore!).Status(requestId)).CommittedThrough);
        }
        finally
        {
            BufferCapture.DisposeAll(filler);
        }
    }

    /// <summary>
    /// The store keeps exactly the contiguous prefix it was sent, values and all, across its storage blocks: resent positions
    /// are skipped, a gap ends the append (its answer says where to resume), a segment of the wrong width is refused.
    /// </summary>
    [Fact]
    public async Task The_checkpoint_store_gives_back_the_prefix_it_committed()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var pool = bed.Pool;
        var requestId = MoeTestBed.NewName("r");
        var store = bed.Cluster.Client.GetGrain<IKvCheckpointStoreGrain>(MoeTestBed.NewName("store"));
        const int layers = 2, width = 3, floats = layers * width;
        static float Key(int position, int i) => position + (i / 10f);
        static int Output(int position) => position % 7 == 0 ? -1 : position % 256;
        KvSegments Batch(int from, int count, Func<int, int, float>? key = null)
        {
            var batch = KvSegments.Rent(pool, from, count, floats);
            for (var index = 0; index < count; index++)
            {
                var position = from + index;
                for (var i = 0; i < floats; i++)
                {
                    batch.Keys(index, floats)[i] = (key ?? Key)(position, i);
                    batch.Values(index, floats)[i] = key is null ? -Key(position, i) : 0;
                }

                batch.Outputs[index] = Output(position);
            }

            return batch;
        }

        async Task<int> AppendAsync(string request, KvSegments batch)
        {
            // The store holds its own reference to what it keeps: the sender's goes after the call.
            using (batch)
            {
                return await store.Append(request, batch);
            }
        }

        var live = pool.GetStatistics().LiveBuffers;
        await store.Begin(new GenerationRequest { RequestId = requestId, Deployment = "d", Prompt = Prompt, MaxTokens = 200 }, layers, width);
        Assert.Equal(2, await AppendAsync(requestId, Batch(0, 3)));
        Assert.Equal(3, await AppendAsync(requestId, Batch(1, 3)));
        Assert.Equal(3, await AppendAsync(requestId, Batch(5, 1)));
        Assert.Equal(149, await AppendAsync(requestId, Batch(4, 146)));
        using (var wrong = new KvSegments(150, [1], pool.Rent(5 * sizeof(float))))
        {
            Assert.Contains("come in 20 bytes", (await Assert.ThrowsAsync<ArgumentException>(() => store.Append(requestId, wrong))).Message);
        }

        await Assert.ThrowsAsync<KvCheckpointLostException>(() => AppendAsync("another-request", Batch(0, 1)));

        // Kept: the three batches that extended the prefix; the resent and the gapped ones and the refused went back.
        Assert.Equal(live + 3, pool.GetStatistics().LiveBuffers);
        using (var checkpoint = await store.Restore(requestId))
        {
            using var expected = Batch(0, 150);
            Assert.Equal((0, 150), (checkpoint.Segments!.From, checkpoint.Segments.Count));
            Assert.Equal(expected.Outputs, checkpoint.Segments.Outputs);
            Assert.True(expected.Bytes.Span.SequenceEqual(checkpoint.Segments.Bytes.Span));
        }

        var status = await store.Status(requestId);
        Assert.Equal((149, 150L * 2 * layers * width * sizeof(float)), (status.CommittedThrough, status.BytesStored));
        Assert.Equal([2, 3, 149], status.Commits.Select(c => c.Through));

        // Another request in the same store has a prefix and commits of its own; dropping it leaves the first as it was.
        var second = MoeTestBed.NewName("r");
        await store.Begin(new GenerationRequest { RequestId = second, Deployment = "d", Prompt = Prompt, MaxTokens = 200 }, layers, width);
        Assert.Equal(9, await AppendAsync(second, Batch(0, 10)));
        var secondStatus = await store.Status(second);
        Assert.Equal(9, secondStatus.CommittedThrough);
        Assert.Equal([1L], secondStatus.Commits.Select(c => c.Sequence));
        await store.Drop(second);
        Assert.Equal(-1, (await store.Status(second)).CommittedThrough);
        using (var dropped = await store.Restore(second))
        {
            Assert.Null(dropped.Request);
            Assert.Null(dropped.Segments);
        }

        using (var first = await store.Restore(requestId))
        {
            Assert.Equal(150, first.Segments!.Count);
        }

        // Begun again for another generation: the store starts empty (its old bytes back in the pool), and what it gives
        // back is only what it was sent since.
        static float Other(int position, int i) => 1000f + position;
        await store.Begin(new GenerationRequest { RequestId = requestId, Deployment = "d", Prompt = Prompt, MaxTokens = 100 }, layers, width);
        Assert.Equal(live, pool.GetStatistics().LiveBuffers);
        Assert.Equal(19, await AppendAsync(requestId, Batch(0, 20, Other)));
        using var again = await store.Restore(requestId);
        using var sent = Batch(0, 20, Other);
        Assert.True(sent.Bytes.Span.SequenceEqual(again.Segments!.Bytes.Span));
    }

    /// <summary>
    /// Checkpoints go through the node's shared pool: on silos without one, a deployment that checkpoints cannot open a
    /// session, and says so (in its rehearsals and to a generation), while one that does not checkpoint serves as before.
    /// </summary>
    [Fact]
    public async Task Checkpointing_without_a_shared_pool_fails_naming_it()
    {
        await using var bed = await MoeTestBed.StartAsync(silos: 2, dataplane: false);
        var checkpointing = MoeTestBed.NewName("d");
        var status = await bed.Client.DeployAsync(checkpointing, MoeTestBed.Spec());
        Assert.NotEmpty(status.Rehearsals);
        Assert.All(status.Rehearsals, r => Assert.Contains("shared pool", r.Problem));
        var failed = await Assert.ThrowsAnyAsync<Exception>(() => CollectAsync(bed.Client.GenerateAsync(checkpointing, Prompt, cancellationToken: TestContext.Current.CancellationToken)));
        Assert.Contains("shared pool", failed.Message);

        var plain = MoeTestBed.NewName("d");
        await bed.Client.DeployAsync(plain, MoeTestBed.Spec() with { Checkpointing = false });
        var tokens = await CollectAsync(bed.Client.GenerateAsync(plain, Prompt, new GenerationOptions { MaxTokens = 8 }, TestContext.Current.CancellationToken));
        Assert.Equal(MoeTestBed.Reference(Prompt, 8), tokens.Select(t => t.Token));
    }

    /// <summary>
    /// An expert silo killed mid-generation: the session replays its calls to the shadows and the output is still the
    /// failure-free one; the deployment promotes the shadows and loads new ones on the surviving silos.
    /// </summary>
    [Fact]
    public async Task Killing_an_expert_silo_mid_generation_changes_no_token()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("d");
        var spec = MoeTestBed.Spec() with { Config = MoeTestBed.SlowConfig };
        await bed.Client.DeployAsync(deployment, spec);
        var (tokens, killed, requestId) = await GenerateAndKillAsync(bed, deployment, afterTokens: 5, (silos, sessionSilo) => silos.First(s => s != sessionSilo));

        Assert.Equal(MoeTestBed.Reference(Prompt, 120, config: MoeTestBed.SlowConfig), tokens.Select(t => t.Token));
        Assert.Equal(Enumerable.Range(0, 120), tokens.Select(t => t.Index));
        Assert.All(tokens, t => Assert.Equal(0, t.Incarnation));

        var status = await WaitAsync(bed, deployment, s => s.Events.Any(e => e.Kind == "expert-silo"));
        var failure = status.Events.Single(e => e.Kind == "expert-silo");
        Assert.Equal(killed.Address.ToString(), failure.Silo);
        Assert.True(failure.PromotedExperts > 0);
        Assert.Contains(killed.Address.ToString(), status.Routes!.DeadSilos);
        Assert.DoesNotContain(status.Routes.Replicas, r => r.Silo == killed.Address.ToString());
        Assert.All(status.Routes.Candidates, c => Assert.Equal(2, c.Select(r => r.Silo).Distinct().Count()));

        // The telemetry saw every token, second by second, and the stall the failure caused.
        var (telemetry, _) = await TelemetryAsync(
            bed, deployment, t => t.Sessions.Any(s => s.RequestId == requestId && s.State == "done") && t.Stalls.Any(s => s.Describes(failure)));
        var session = telemetry.Sessions.Single(s => s.RequestId == requestId);
        Assert.Equal((120, 120, 0), (session.Tokens, session.MaxTokens, session.Incarnation));
        Assert.True(session.Replays > 0, "the session replayed no expert call");
        Assert.Equal(120, telemetry.Series.Sum(s => s.Tokens));
        var stall = telemetry.Stalls.Single(s => s.Describes(failure)).StallMs;
        Assert.NotNull(stall);
        Assert.True(stall >= session.TbtP50Ms, $"stall {stall} ms is shorter than the median gap {session.TbtP50Ms} ms");
        Assert.True(session.MaxGapMs >= stall, $"the session's longest gap {session.MaxGapMs} ms is shorter than the stall {stall} ms");
    }

    /// <summary>
    /// An expert replica is pinned to its silo: after that silo dies a call to it fails at once, naming the silo, instead
    /// of re-activating the replica on another silo (where its shadow may run) behind the deployment's back.
    /// </summary>
    [Fact]
    public async Task An_expert_replica_is_not_reactivated_off_its_dead_silo()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("d");
        var status = await bed.Client.DeployAsync(deployment, MoeTestBed.Spec(RecoveryMode.Restart));
        var victim = bed.Cluster.Silos[^1];
        var replica = status.Routes!.Replicas.First(r => r.Silo == victim.Address.ToString());
        var expert = bed.Cluster.Client.GetGrain<IExpertGrain>(replica.Key);
        Assert.Equal(victim.Address.ToString(), (await expert.Ping()).Silo);

        await bed.Cluster.KillSiloAsync(victim);

        var refused = await Assert.ThrowsAsync<SiloUnavailableException>(() => expert.Ping());
        Assert.Contains(victim.Address.ToString(), refused.Message, StringComparison.Ordinal);
        Assert.All(bed.Cluster.Silos.Where(s => s != victim), s => Assert.NotEqual(s, bed.Cluster.FindSiloHosting(expert)));
    }

    /// <summary>The session's silo killed mid-generation: the next incarnation restores the checkpoint elsewhere and the stream goes on without a gap, a repeat or a different token.</summary>
    [Fact]
    public async Task Killing_the_session_silo_resumes_from_the_checkpoint_with_the_same_tokens()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("d");
        await bed.Client.DeployAsync(deployment, MoeTestBed.Spec() with { Config = MoeTestBed.SlowConfig });
        var (tokens, killed, requestId) = await GenerateAndKillAsync(bed, deployment, afterTokens: 30, (_, sessionSilo) => sessionSilo);

        Assert.Equal(MoeTestBed.Reference(Prompt, 120, config: MoeTestBed.SlowConfig), tokens.Select(t => t.Token));
        Assert.Equal(Enumerable.Range(0, 120), tokens.Select(t => t.Index));
        Assert.Contains(tokens, t => t.Incarnation > 0);

        // The failure's stall comes with the client's wait across the move, and the request shows under its new
        // incarnation. The client reports its wait one way, so it may reach the deployment after the session's last
        // report: both are waited for.
        var (telemetry, status) = await TelemetryAsync(
            bed,
            deployment,
            t => t.Sessions.Any(s => s.RequestId == requestId && s.State == "done") && t.Stalls.Any(s => s.Silo == killed.Address.ToString() && s.Resume is not null));
        var session = telemetry.Sessions.Single(s => s.RequestId == requestId);
        Assert.Equal(tokens[^1].Incarnation, session.Incarnation);
        Assert.Equal(120, session.Tokens);
        var described = telemetry.Stalls.First(s => s.Silo == killed.Address.ToString() && s.Resume is not null);
        Assert.Contains(status.Events, e => e.Silo == killed.Address.ToString());

        // The stall is at least the client's wait (a session may have paused longer nearby on a loaded machine), the
        // request's longest gap is too, the phases add up to the wait, and the new incarnation read the checkpoint.
        var resume = described.Resume!;
        Assert.True(described.StallMs >= Math.Round(resume.GapMs, 1), $"the stall {described.StallMs} ms is shorter than the client's wait {resume.GapMs} ms");
        Assert.True(session.MaxGapMs >= Math.Round(resume.GapMs, 1), $"the request's longest gap {session.MaxGapMs} ms is shorter than the client's wait {resume.GapMs} ms");
        Assert.Equal((requestId, tokens[^1].Incarnation), InferenceSessions.Parse(resume.Session));

        // The new incarnation was opened on the silo of the checkpoint it restored from (its key names it: no directory).
        Assert.True(LocalityAwarePlacement.TryParse(resume.Session, out _, out var openedOn), $"the resumed session {resume.Session} names no silo");
        Assert.Equal(tokens[^1].Silo, openedOn!.ToString());
        Assert.NotEqual(killed.Address, openedOn);
        // Within a microsecond, not to three decimals: rounding the two sides could land on either side of a boundary.
        Assert.Equal(resume.GapMs, resume.NoticedMs + resume.ReopenMs + resume.FirstTokenMs, tolerance: 0.001);
        Assert.InRange(resume.SessionOpenMs, 0, resume.ReopenMs);
        Assert.True(resume.RestoredPositions > Prompt.Length, $"the new incarnation restored {resume.RestoredPositions} positions");
        Assert.InRange(resume.RecomputedTokens, 0, 30);
    }

    /// <summary>
    /// A request without checkpoints whose session silo is killed resumes by computing every position again from the
    /// prompt and the tokens the client has: the same tokens, none missing or repeated.
    /// </summary>
    [Fact]
    public async Task Killing_the_session_silo_of_a_request_without_checkpoints_recomputes_the_same_tokens()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("d");
        await bed.Client.DeployAsync(deployment, MoeTestBed.Spec() with { Config = MoeTestBed.SlowConfig });
        var (tokens, killed, requestId) = await GenerateAndKillAsync(bed, deployment, afterTokens: 30, (_, sessionSilo) => sessionSilo, checkpoint: false);

        Assert.Equal(MoeTestBed.Reference(Prompt, 120, config: MoeTestBed.SlowConfig), tokens.Select(t => t.Token));
        Assert.Equal(Enumerable.Range(0, 120), tokens.Select(t => t.Index));
        Assert.Contains(tokens, t => t.Incarnation > 0);
        var (telemetry, _) = await TelemetryAsync(bed, deployment, t => t.Stalls.Any(s => s.Silo == killed.Address.ToString() && s.Resume is not null));
        var resume = telemetry.Stalls.First(s => s.Silo == killed.Address.ToString() && s.Resume is not null).Resume!;
        Assert.Equal(requestId, InferenceSessions.Parse(resume.Session).RequestId);
        Assert.Equal(0, resume.RestoredPositions);
        Assert.InRange(resume.RecomputedTokens, 30, 120);
    }

    /// <summary>
    /// The deployment's own silo dies (it reactivates elsewhere, without its list of sessions, so it cannot send them the
    /// new shadows), then a second expert silo: the session, finding every replica it knows of an expert dead, fetches the
    /// current table and goes on with the new shadows; no token changes and the session never moves.
    /// </summary>
    [Fact]
    public async Task A_session_with_a_stale_table_fetches_the_new_shadows()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("d");
        var (home, deploymentSilo, other) = (bed.Cluster.Silos[0], bed.Cluster.Silos[1], bed.Cluster.Silos[2]);
        // A long generation: the test must kill both silos while the session still decodes, and the session does not wait
        // for the test (on a quiet machine 220 tokens were all decoded before the deployment had made its new shadows). A
        // way to hold a session between steps would end the race. The experts stay narrow: wider ones loaded the machine
        // enough to delay the other session tests running beside this one in a full run.
        var config = MoeTestBed.SlowConfig with { MaxSequence = 1024 };
        await deploymentSilo.GrainFactory.GetGrain<IMoeDeploymentGrain>(deployment).Deploy(MoeTestBed.Spec() with { Config = config });
        Assert.Equal(deploymentSilo, bed.Cluster.FindSiloHosting(bed.Client.Deployment(deployment)));

        // The session is opened from (hence on) the first silo, and read from there.
        var requestId = MoeTestBed.NewName("r");
        var session = home.GrainFactory.GetGrain<IInferenceSessionGrain>(InferenceSessions.Key(requestId, 0));
        const int Tokens = 1000;
        await session.Open(new GenerationRequest { RequestId = requestId, Deployment = deployment, Prompt = Prompt, MaxTokens = Tokens }, restoreFrom: null, delivered: []);
        Assert.Equal(home, bed.Cluster.FindSiloHosting(session));
        var tokens = new List<int>();
        var killedDeploymentSilo = false;
        var killedOther = false;
        TokenBatch batch;
        do
        {
            batch = await session.Read(tokens.Count, TimeSpan.FromSeconds(5));
            Assert.Null(batch.Failure);
            tokens.AddRange(batch.Tokens);
            if (!killedDeploymentSilo && tokens.Count >= 5)
            {
                killedDeploymentSilo = true;
                await bed.Cluster.KillSiloAsync(deploymentSilo);
            }
            else if (killedDeploymentSilo && !killedOther && tokens.Count >= 30)
            {
                killedOther = true;
                await WaitAsync(bed, deployment, s => s.Events.Any(e => e.Kind == "expert-silo" && e.Silo == deploymentSilo.Address.ToString() && e.NewShadows > 0));
                await bed.Cluster.KillSiloAsync(other);
            }
        }
        while (!batch.Done);

        Assert.True(killedOther, "the generation ended before the second failure");
        Assert.Equal(MoeTestBed.Reference(Prompt, Tokens, config: config), tokens);
        var status = await WaitAsync(bed, deployment, s => s.Events.Any(e => e.Kind == "expert-silo" && e.Silo == other.Address.ToString()));
        Assert.All(status.Routes!.Replicas, r => Assert.Equal(home.Address.ToString(), r.Silo));
    }

    /// <summary>The baseline restarts everything after an expert silo dies, and the request still completes with the failure-free tokens.</summary>
    [Fact]
    public async Task The_restart_baseline_completes_with_the_same_tokens()
    {
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("b");
        await bed.Client.DeployAsync(deployment, MoeTestBed.Spec(RecoveryMode.Restart) with { Config = MoeTestBed.SlowConfig });
        var (tokens, _, _) = await GenerateAndKillAsync(bed, deployment, afterTokens: 5, (silos, sessionSilo) => silos.First(s => s != sessionSilo));

        Assert.Equal(MoeTestBed.Reference(Prompt, 120, config: MoeTestBed.SlowConfig), tokens.Select(t => t.Token));
        Assert.Equal(Enumerable.Range(0, 120), tokens.Select(t => t.Index));
        var status = await bed.Client.Deployment(deployment).Status();
        Assert.Equal(1, status.Epoch);
        Assert.Contains(status.Events, e => e.Kind == "restart");
    }

    /// <summary>
    /// Undeploying takes a deployment out of service: a generation running on it fails, naming it; its expert replicas
    /// let their weights go (a call activates a new replica, which finds nothing to load); new generations are refused at
    /// once; and the name can be deployed again.
    /// </summary>
    [Fact]
    public async Task Undeploying_stops_its_sessions_unloads_its_experts_and_frees_the_name()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var bed = await MoeTestBed.StartAsync();
        var deployment = MoeTestBed.NewName("u");
        var status = await bed.Client.DeployAsync(deployment, MoeTestBed.Spec() with { Config = MoeTestBed.SlowConfig });
        var replica = status.Routes!.Replicas.First();
        Assert.True((await bed.Cluster.Client.GetGrain<IExpertGrain>(replica.Key).Ping()).WeightBytes > 0);

        var tokens = new List<GeneratedToken>();
        var request = MoeTestBed.NewName("undeployed");
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var generation = Task.Run(async () =>
        {
            await foreach (var token in bed.Client.GenerateAsync(deployment, Prompt, new GenerationOptions { MaxTokens = 200, RequestId = request }, cancellationToken))
            {
                tokens.Add(token);
                if (tokens.Count == 5)
                {
                    running.SetResult();
                }
            }
        }, cancellationToken);
        await running.Task.WaitAsync(cancellationToken);
        var store = bed.Cluster.Client.GetGrain<IKvCheckpointStoreGrain>(KvCheckpointStores.Key(deployment, tokens[0].Silo));
        var waiting = Stopwatch.StartNew();
        while ((await store.Status(request)).CommittedThrough < 0)
        {
            Assert.True(waiting.Elapsed < TimeSpan.FromSeconds(10), $"request {request} has no checkpoint in the store");
            await Task.Delay(10, cancellationToken);
        }

        Assert.True(MoeModelCache.Holds(deployment), "the silos hold no attention weights for the deployment");
        await bed.Client.UndeployAsync(deployment);
        Assert.False(MoeModelCache.Holds(deployment), "the silos kept the undeployed deployment's attention weights");

        var stopped = await Assert.ThrowsAsync<MoeGenerationException>(() => generation);
        Assert.Contains($"deployment {deployment} was undeployed", stopped.Message, StringComparison.Ordinal);
        Assert.InRange(tokens.Count, 5, 199);
        Assert.Equal(MoeTestBed.Reference(Prompt, tokens.Count, config: MoeTestBed.SlowConfig), tokens.Select(t => t.Token));
        Assert.Equal(DeploymentPhase.NotDeployed, (await bed.Client.Deployment(deployment).Status()).Phase);
        var unloaded = await Assert.ThrowsAnyAsync<Exception>(() => bed.Cluster.Client.GetGrain<IExpertGrain>(replica.Key).Ping());
        Assert.Contains("is not deployed", unloaded.Message, StringComparison.Ordinal);

        // The stopped request will not resume: its checkpoint leaves the store (dropped in the background).
        var dropping = Stopwatch.StartNew();
        while ((await store.Status(request)).CommittedThrough >= 0)
        {
            Assert.True(dropping.Elapsed < TimeSpan.FromSeconds(10), $"request {request}'s checkpoint is still in the store");
            await Task.Delay(20, cancellationToken);
        }

        var watch = Stopwatch.StartNew();
        var refused = await Assert.ThrowsAsync<MoeGenerationException>(() => CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, cancellationToken: cancellationToken)));
        Assert.Contains("not deployed", refused.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"refusing a generation on an undeployed name took {watch.Elapsed}: it was retried");

        await bed.Client.UndeployAsync(deployment); // nothing to do
        Assert.Equal(DeploymentPhase.Ready, (await bed.Client.DeployAsync(deployment, MoeTestBed.Spec())).Phase);
        var again = await CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, new GenerationOptions { MaxTokens = 8 }, cancellationToken));
        Assert.Equal(MoeTestBed.Reference(Prompt, 8), again.Select(t => t.Token));
    }

    /// <summary>
    /// A session given tokens the client already has (as a resumed incarnation is) takes them with the prompt in
    /// batched steps — each layer's experts called once for all the positions routed to them — then decodes on to the
    /// local decode's tokens; a delivered token the model would not have produced fails the session, naming it, and
    /// delivered tokens outside the vocabulary or beyond the request are refused.
    /// </summary>
    [Fact]
    public async Task Known_tokens_are_prefilled_together_and_checked()
    {
        await using var bed = await MoeTestBed.StartAsync(silos: 1);
        var deployment = MoeTestBed.NewName("d");
        var status = await bed.Client.DeployAsync(deployment, MoeTestBed.Spec() with { Shadows = 0 });
        var (layers, topK, experts) = (MoeTestBed.Config.Layers, MoeTestBed.Config.TopK, MoeTestBed.Config.Experts);
        var reference = MoeTestBed.Reference(Prompt, 40);
        // First-time calls: on a loaded machine a call may miss its deadline and be replayed, which is not what is counted.
        async Task<long> ExpertCallsAsync() =>
            (await Task.WhenAll(status.Routes!.Replicas.Select(r => bed.Cluster.Client.GetGrain<IExpertGrain>(r.Key).Ping()))).Sum(l => l.Calls - l.Replays);
        GenerationRequest Request() => new() { RequestId = MoeTestBed.NewName("r"), Deployment = deployment, Prompt = Prompt, MaxTokens = 40 };
        IInferenceSessionGrain Session(GenerationRequest request) => bed.Cluster.Client.GetGrain<IInferenceSessionGrain>(InferenceSessions.Key(request.RequestId, 0));

        var before = await ExpertCallsAsync();
        var request = Request();
        await Session(request).Open(request, restoreFrom: null, delivered: reference[..25]);
        var (tokens, failure) = await ReadToEndAsync(Session(request));
        Assert.Null(failure);
        Assert.Equal(reference, tokens);

        // The prompt's 20 positions and the 25 of delivered tokens go in two steps (32 + 13 positions, each calling at
        // most every expert once per layer); the 14 positions after them decode one by one. A step per position would
        // have made 59 × layers × top-k calls.
        var calls = await ExpertCallsAsync() - before;
        var decoded = 14 * layers * topK;
        Assert.InRange(calls, decoded + (2 * layers * topK), decoded + (2 * layers * experts));

        var wrong = reference[..25];
        wrong[10] = (wrong[10] + 1) % 256;
        var misled = Request();
        await Session(misled).Open(misled, restoreFrom: null, delivered: wrong);
        var (_, mismatch) = await ReadToEndAsync(Session(misled));
        Assert.Contains($"Token 10 (position {Prompt.Length + 9}) came out {reference[10]}, but the client had {wrong[10]}", mismatch, StringComparison.Ordinal);

        var outside = Request();
        var notByte = await Assert.ThrowsAsync<ArgumentException>(() => Session(outside).Open(outside, restoreFrom: null, delivered: [65, 300]));
        Assert.Contains("delivered token 300 (index 1) is not in the 256-token vocabulary", notByte.Message, StringComparison.Ordinal);
        var tooMany = Request();
        var beyond = await Assert.ThrowsAsync<ArgumentException>(() => Session(tooMany).Open(tooMany, restoreFrom: null, delivered: new int[41]));
        Assert.Contains("41 tokens delivered of 40 asked for", beyond.Message, StringComparison.Ordinal);
    }

    /// <summary>Bad requests are refused with the reason, and the deployment keeps serving.</summary>
    [Fact]
    public async Task Bad_requests_are_refused_with_the_reason()
    {
        await using var bed = await MoeTestBed.StartAsync(silos: 1);
        var deployment = MoeTestBed.NewName("d");
        await bed.Client.DeployAsync(deployment, MoeTestBed.Spec() with { Shadows = 0 });

        var notByte = await Assert.ThrowsAsync<MoeGenerationException>(() => CollectAsync(bed.Client.GenerateAsync(deployment, [65, 300], cancellationToken: TestContext.Current.CancellationToken)));
        Assert.Contains("300", notByte.Message, StringComparison.Ordinal);
        var tooLong = await Assert.ThrowsAsync<MoeGenerationException>(() => CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, new GenerationOptions { MaxTokens = 500 }, TestContext.Current.CancellationToken)));
        Assert.Contains("128-position", tooLong.Message, StringComparison.Ordinal);
        var slash = await Assert.ThrowsAsync<ArgumentException>(() => CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, new GenerationOptions { RequestId = "a/b" }, TestContext.Current.CancellationToken)));
        Assert.Contains("RequestId 'a/b'", slash.Message, StringComparison.Ordinal);
        var unknown = await Assert.ThrowsAsync<MoeGenerationException>(() => CollectAsync(bed.Client.GenerateAsync("nowhere", Prompt, cancellationToken: TestContext.Current.CancellationToken)));
        Assert.Contains("not deployed", unknown.Message, StringComparison.Ordinal);
        var badSpec = await Assert.ThrowsAsync<ArgumentException>(() => bed.Client.DeployAsync(MoeTestBed.NewName("x"), MoeTestBed.Spec() with { Config = MoeTestBed.Config with { Heads = 5 } }));
        Assert.Contains("heads", badSpec.Message, StringComparison.Ordinal);

        var routes = (await bed.Client.Deployment(deployment).Status()).Routes!;
        var expert = bed.Cluster.Client.GetGrain<IExpertGrain>(routes.For(0, 0)[0].Key);
        var shape = await Assert.ThrowsAsync<ArgumentException>(() => expert.Run(new float[5]));
        Assert.Contains("takes rows of 32 values; the call gave 5", shape.Message, StringComparison.Ordinal);
        Assert.Contains("gave 0", (await Assert.ThrowsAsync<ArgumentException>(() => expert.Run([]))).Message, StringComparison.Ordinal);

        // Several rows (a prefill's positions routed to this expert) give each row's one-row answer, bit for bit: the one-row
        // answers come from another replica of the same expert, which has not seen these rows (this one would answer them
        // from its memo).
        var key = routes.For(0, 0)[0].Key;
        var shadow = bed.Cluster.Client.GetGrain<IExpertGrain>(key[..(key.LastIndexOf('/') + 1)] + "7");
        var rows = Enumerable.Range(0, 3 * 32).Select(i => MathF.Sin(i)).ToArray();
        var remembered = (await expert.Ping()).RememberedRows;
        var batched = await expert.Run(rows);
        Assert.Equal(remembered, (await expert.Ping()).RememberedRows);
        for (var row = 0; row < 3; row++)
        {
            Assert.Equal(await shadow.Run(rows[(row * 32)..((row + 1) * 32)]), batched[(row * 32)..((row + 1) * 32)]);
        }

        // The same rows again (a resumed session recomputing what its predecessor decoded) are answered from the memo, with
        // the same bits; a row one bit away from one of them is computed.
        Assert.Equal(batched, await expert.Run(rows));
        Assert.Equal(remembered + 3, (await expert.Ping()).RememberedRows);
        var nudged = rows[..32];
        nudged[31] = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(nudged[31]) ^ 1);
        Assert.Equal(await shadow.Run(nudged), await expert.Run(nudged));
        Assert.Equal(remembered + 3, (await expert.Ping()).RememberedRows);

        var nan = new float[32];
        nan[3] = float.NaN;
        Assert.Contains("index 3", (await Assert.ThrowsAsync<ArgumentException>(() => expert.Run(nan))).Message, StringComparison.Ordinal);

        var fine = await CollectAsync(bed.Client.GenerateAsync(deployment, Prompt, new GenerationOptions { MaxTokens = 8 }, TestContext.Current.CancellationToken));
        Assert.Equal(MoeTestBed.Reference(Prompt, 8), fine.Select(t => t.Token));
    }

    /// <summary>
    /// Generates 120 tokens of <see cref="MoeTestBed.SlowConfig"/>'s model and, once <paramref name="afterTokens"/> have
    /// arrived, kills the silo <paramref name="choose"/> picks (given the running silos and the session's first silo).
    /// </summary>
    private static async Task<(List<GeneratedToken> Tokens, InProcessSiloHandle Killed, string RequestId)> GenerateAndKillAsync(
        MoeTestBed bed, string deployment, int afterTokens, Func<IReadOnlyList<InProcessSiloHandle>, InProcessSiloHandle, InProcessSiloHandle> choose, bool checkpoint = true)
    {
        var requestId = MoeTestBed.NewName("r");
        var tokens = new List<GeneratedToken>();
        InProcessSiloHandle? killed = null;
        var options = new GenerationOptions { MaxTokens = 120, RequestId = requestId, Checkpoint = checkpoint };
        await foreach (var token in bed.Client.GenerateAsync(deployment, Prompt, options, TestContext.Current.CancellationToken))
        {
            tokens.Add(token);
            if (tokens.Count == afterTokens)
            {
                var sessionSilo = bed.Cluster.FindSiloHosting(bed.Cluster.Client.GetGrain<IInferenceSessionGrain>(InferenceSessions.Key(requestId, 0)));
                Assert.NotNull(sessionSilo);
                killed = choose(bed.Cluster.Silos, sessionSilo);
                await bed.Cluster.KillSiloAsync(killed);
            }
        }

        return (tokens, killed!, requestId);
    }

    /// <summary>The deployment's telemetry (and status) once <paramref name="condition"/> holds: sessions report one-way, a little after the tokens.</summary>
    private static async Task<(MoeTelemetry Telemetry, DeploymentStatus Status)> TelemetryAsync(MoeTestBed bed, string deployment, Func<MoeTelemetry, bool> condition)
    {
        var grain = bed.Client.Deployment(deployment);
        return (await PollAsync(grain.Telemetry, condition, "the telemetry"), await grain.Status());
    }

    private static Task<DeploymentStatus> WaitAsync(MoeTestBed bed, string deployment, Func<DeploymentStatus, bool> condition) =>
        PollAsync(bed.Client.Deployment(deployment).Status, condition, "the deployment");

    /// <summary>Reads until <paramref name="condition"/> holds (what grains report one-way or after a failure arrives a little later), at most 30 s.</summary>
    private static async Task<T> PollAsync<T>(Func<Task<T>> read, Func<T, bool> condition, string what)
    {
        var started = DateTime.UtcNow;
        T value;
        while (!condition(value = await read()))
        {
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(30), $"{what} did not get there in time");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        return value;
    }

    /// <summary>Waits until no buffer of <paramref name="pool"/> is held (drops are not waited for by their senders).</summary>
    private static Task PoolEmptiedAsync(SharedBufferPool pool, string when) =>
        PollAsync(() => Task.FromResult(pool.GetStatistics().LiveBuffers), held => held == 0, $"emptying the pool {when}");

    /// <summary>
    /// Opens the first incarnation of a new request of <paramref name="maxTokens"/> tokens on <paramref name="deployment"/>
    /// from the test's client and reads it to the end, which must come without a failure.
    /// </summary>
    private static async Task<(IInferenceSessionGrain Session, SessionOpened Opened, string RequestId, List<int> Tokens)> RunFirstAsync(
        MoeTestBed bed, string deployment, int maxTokens, bool checkpoint = true)
    {
        var requestId = MoeTestBed.NewName("r");
        var session = bed.Cluster.Client.GetGrain<IInferenceSessionGrain>(InferenceSessions.Key(requestId, 0));
        var request = new GenerationRequest { RequestId = requestId, Deployment = deployment, Prompt = Prompt, MaxTokens = maxTokens, Checkpoint = checkpoint };
        var opened = await session.Open(request, restoreFrom: null, delivered: []);
        var (tokens, failure) = await ReadToEndAsync(session);
        Assert.Null(failure);
        return (session, opened, requestId, tokens);
    }

    /// <summary>A session's tokens until it is done or failed, and its failure.</summary>
    private static async Task<(List<int> Tokens, string? Failure)> ReadToEndAsync(IInferenceSessionGrain session)
    {
        var tokens = new List<int>();
        var waited = Stopwatch.StartNew();
        while (true)
        {
            var batch = await session.Read(tokens.Count, TimeSpan.FromSeconds(5));
            tokens.AddRange(batch.Tokens);
            if (batch.Done || batch.Failure is not null)
            {
                return (tokens, batch.Failure);
            }

            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), $"the session produced {tokens.Count} tokens in a minute");
        }
    }

    private static async Task<List<GeneratedToken>> CollectAsync(IAsyncEnumerable<GeneratedToken> tokens)
    {
        var list = new List<GeneratedToken>();
        await foreach (var token in tokens)
        {
            list.Add(token);
        }

        return list;
    }
}
