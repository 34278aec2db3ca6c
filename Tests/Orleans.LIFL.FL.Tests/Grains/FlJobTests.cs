using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Grains.FL.Algorithms;
using Orleans.LIFL.Persistence;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Grains;

/// <summary>The FL grains driven by hand: rounds, selection, aggregation algorithms, and each kind of bad input.</summary>
public sealed class FlJobTests : IAsyncLifetime
{
    private FlTestBed _bed = null!;

    public async ValueTask InitializeAsync() => _bed = await FlTestBed.StartAsync();

    public ValueTask DisposeAsync() => _bed.DisposeAsync();

    /// <summary>Two FedAvg rounds: each published model is the global plus the example-weighted mean of the round's deltas.</summary>
    [Fact]
    public async Task FedAvg_rounds_publish_the_weighted_mean_of_the_updates()
    {
        var jobId = FlTestBed.NewJobId();
        var (_, global) = await _bed.CreateJobAsync(jobId, FlTestBed.Definition(rounds: 2));
        var clients = await _bed.JoinAsync(jobId, 3);
        for (var round = 1; round <= 2; round++)
        {
            var status = await _bed.WaitForAsync(jobId, s => s.Round == round && s.Selected.Length == 3, $"round {round} starting");
            Assert.Equal([.. clients], status.Selected.Order());
            var updates = clients.Select((c, i) => (Delta: FlTestBed.Delta((round * 10) + i), Examples: (long)(i + 1) * 100)).ToList();
            for (var i = 0; i < clients.Length; i++)
            {
                var receipt = await _bed.SubmitAsync(jobId, clients[i], round, updates[i].Delta, updates[i].Examples);
                Assert.Equal((round, 0, false), (receipt.Round, receipt.Epoch, receipt.AlreadyAccepted));
            }

            await _bed.WaitForVersionAsync(jobId, round);
            var expected = FlTestBed.FedAvg(global, updates);
            FlTestBed.AssertClose(expected, await _bed.ModelAsync(jobId, round));
            global = expected;
        }

        var final = await _bed.Job(jobId).Status();
        Assert.Equal(JobPhase.Completed, final.Phase);
        Assert.Equal([3, 3], final.History.Select(m => m.Accepted));
        Assert.All(final.History, m => Assert.True(m.AggregationMilliseconds >= 0 && m.RoundMilliseconds >= m.AggregationMilliseconds));
    }

    /// <summary>Selection is uniform and reproducible: the same seed picks the same clients, another seed others.</summary>
    [Fact]
    public async Task Selection_is_reproducible_with_the_seed()
    {
        async Task<IReadOnlyList<string>> SelectedWithSeedAsync(int seed)
        {
            var jobId = FlTestBed.NewJobId();
            await _bed.CreateJobAsync(jobId, FlTestBed.Definition(clientsPerRound: 3) with { Seed = seed, MinAvailableClients = 12 });
            await _bed.JoinAsync(jobId, 12);
            return [.. (await _bed.WaitForAsync(jobId, s => s.Selected.Length == 3, "selection")).Selected.Order()];
        }

        var first = await SelectedWithSeedAsync(42);
        Assert.Equal(first, await SelectedWithSeedAsync(42));
        var others = new[] { await SelectedWithSeedAsync(43), await SelectedWithSeedAsync(44), await SelectedWithSeedAsync(45) };
        Assert.Contains(others, o => !o.SequenceEqual(first));
    }

    /// <summary>Each kind of bad update is refused with its reason, counted, and leaves the aggregate untouched.</summary>
    [Fact]
    public async Task Bad_updates_are_refused_by_reason_and_never_reach_the_aggregate()
    {
        var jobId = FlTestBed.NewJobId();
        var (job, global) = await _bed.CreateJobAsync(jobId, FlTestBed.Definition(clientsPerRound: 2, rounds: 2) with { MaxUpdateNorm = 10 });
        var clients = await _bed.JoinAsync(jobId, 2);
        await _bed.WaitForAsync(jobId, s => s.Selected.Length == 2, "selection");

        async Task RefusedAsync(RejectionReason reason, string because, Func<Task> submit)
        {
            var error = await Assert.ThrowsAsync<UpdateRejectedException>(submit);
            Assert.Equal(reason, error.Reason);
            Assert.Contains(because, error.Message, StringComparison.Ordinal);
        }

        var good = FlTestBed.Delta(1);
        await RefusedAsync(RejectionReason.WrongShape, "14 values", () => _bed.SubmitAsync(jobId, clients[0], 1, good[..14], 10));
        using (var odd = _bed.Pool.Rent(15 * 4 + 2))
        {
            await RefusedAsync(RejectionReason.WrongDType, "not a whole number of float32", () => _bed.Session(jobId, clients[0])
                .Submit(new UpdateSubmission { UpdateId = "odd", Round = 1, Examples = 10 }, odd));
        }

        using (var half = _bed.Buffer(good))
        {
            await RefusedAsync(RejectionReason.WrongDType, "float16", () => _bed.Session(jobId, clients[0])
                .Submit(new UpdateSubmission { UpdateId = "half", Round = 1, Examples = 10, DType = "float16" }, half));
        }

        var nan = (float[])good.Clone();
        nan[7] = float.NaN;
        await RefusedAsync(RejectionReason.NonFinite, "index 7", () => _bed.SubmitAsync(jobId, clients[0], 1, nan, 10));
        var infinite = (float[])good.Clone();
        infinite[14] = float.NegativeInfinity;
        await RefusedAsync(RejectionReason.NonFinite, "index 14", () => _bed.SubmitAsync(jobId, clients[0], 1, infinite, 10));
        await RefusedAsync(RejectionReason.NormTooLarge, "exceeds the job's bound 10", () => _bed.SubmitAsync(jobId, clients[0], 1, [.. good.Select(v => v * 100)], 10));
        await RefusedAsync(RejectionReason.BadExamples, "0 examples", () => _bed.SubmitAsync(jobId, clients[0], 1, good, 0));
        await RefusedAsync(RejectionReason.UnknownJob, "no job", () => _bed.SubmitAsync("no-such-job", clients[0], 1, good, 10, baseVersion: 0));
        await RefusedAsync(RejectionReason.UnknownClient, "has not joined", () => _bed.SubmitAsync(jobId, "stranger", 1, good, 10));
        await RefusedAsync(RejectionReason.RoundClosed, "not open", () => _bed.SubmitAsync(jobId, clients[0], 2, good, 10));
        await RefusedAsync(RejectionReason.TooStale, "based on model version 5", () => _bed.SubmitAsync(jobId, clients[0], 1, good, 10, baseVersion: 5));

        // A third client joins after the selection: it is not in the round.
        await _bed.JoinAsync(jobId, 1, prefix: "late");
        await RefusedAsync(RejectionReason.NotSelected, "not selected", () => _bed.SubmitAsync(jobId, "late0", 1, good, 10));

        // The same id for other bytes is refused; the very same update again is accepted once.
        await _bed.SubmitAsync(jobId, clients[0], 1, good, 10, updateId: "u-1");
        await RefusedAsync(RejectionReason.DuplicateUpdateId, "u-1", () => _bed.SubmitAsync(jobId, clients[0], 1, FlTestBed.Delta(2), 10, updateId: "u-1"));
        Assert.True((await _bed.SubmitAsync(jobId, clients[0], 1, good, 10, updateId: "u-1")).AlreadyAccepted);

        var second = FlTestBed.Delta(3);
        await _bed.SubmitAsync(jobId, clients[1], 1, second, 30);
        var status = await _bed.WaitForVersionAsync(jobId, 1);
        FlTestBed.AssertClose(FlTestBed.FedAvg(global, [(good, 10), (second, 30)]), await _bed.ModelAsync(jobId, 1));
        var metrics = status.History[0];
        Assert.Equal(2, metrics.Accepted);
        Assert.Equal(12, metrics.Rejected);
        Assert.Equal(2, metrics.RejectedByReason["WrongDType"]);
        Assert.Equal(2, metrics.RejectedByReason["NonFinite"]);

        // Round 1 is over: a late update for it is refused as such, and an id used in round 1 cannot come back.
        await RefusedAsync(RejectionReason.RoundClosed, "round 1 of job", () => _bed.SubmitAsync(jobId, clients[0], 1, good, 10, baseVersion: 0));
        await _bed.WaitForAsync(jobId, s => s.Round == 2 && s.Selected.Length == 2, "round 2");
        await RefusedAsync(RejectionReason.DuplicateUpdateId, "already used", () => _bed.SubmitAsync(jobId, clients[0], 2, good, 10, updateId: "u-1"));
    }

    /// <summary>At the deadline a round closes with what it has if that is at least the minimum; a straggler is then told the round is closed.</summary>
    [Fact]
    public async Task A_round_closes_at_its_deadline_with_the_minimum_and_refuses_stragglers()
    {
        var jobId = FlTestBed.NewJobId();
        var definition = FlTestBed.Definition(clientsPerRound: 4, rounds: 2) with { MinUpdates = 2, GoalUpdates = 4, RoundDeadline = TimeSpan.FromMilliseconds(600) };
        var (_, global) = await _bed.CreateJobAsync(jobId, definition);
        var clients = await _bed.JoinAsync(jobId, 4);
        await _bed.WaitForAsync(jobId, s => s.Selected.Length == 4, "selection");
        var updates = new[] { (FlTestBed.Delta(1), 10L), (FlTestBed.Delta(2), 20L) };
        await _bed.SubmitAsync(jobId, clients[0], 1, updates[0].Item1, 10);
        await _bed.SubmitAsync(jobId, clients[1], 1, updates[1].Item1, 20);

        var status = await _bed.WaitForVersionAsync(jobId, 1);
        Assert.True(status.History[0].ClosedAtDeadline);
        Assert.Equal(2, status.History[0].Accepted);
        FlTestBed.AssertClose(FlTestBed.FedAvg(global, updates), await _bed.ModelAsync(jobId, 1));
        var late = await Assert.ThrowsAsync<UpdateRejectedException>(() => _bed.SubmitAsync(jobId, clients[2], 1, FlTestBed.Delta(3), 10, baseVersion: 0));
        Assert.Equal(RejectionReason.RoundClosed, late.Reason);
    }

    /// <summary>Below the minimum at the deadline, the round goes on and more clients are selected: no accepted update is dropped.</summary>
    [Fact]
    public async Task Below_the_minimum_at_the_deadline_more_clients_are_selected()
    {
        var jobId = FlTestBed.NewJobId();
        var definition = FlTestBed.Definition(clientsPerRound: 2, rounds: 1) with { MinUpdates = 2, GoalUpdates = 2, RoundDeadline = TimeSpan.FromMilliseconds(400) };
        var (_, global) = await _bed.CreateJobAsync(jobId, definition);
        await _bed.JoinAsync(jobId, 6);
        var first = (await _bed.WaitForAsync(jobId, s => s.Selected.Length == 2, "selection")).Selected;
        var accepted = FlTestBed.Delta(1);
        await _bed.SubmitAsync(jobId, first[0], 1, accepted, 10);

        var topped = await _bed.WaitForAsync(jobId, s => s.Selected.Length > 2, "a top-up");
        Assert.Equal(1, topped.Round);
        var added = topped.Selected.Except(first).First();
        var other = FlTestBed.Delta(2);
        await _bed.SubmitAsync(jobId, added, 1, other, 30);
        await _bed.WaitForVersionAsync(jobId, 1);
        FlTestBed.AssertClose(FlTestBed.FedAvg(global, [(accepted, 10), (other, 30)]), await _bed.ModelAsync(jobId, 1));
    }

    /// <summary>FedBuff takes updates based on older models, weights them by 1/√(1+staleness), and publishes every K updates.</summary>
    [Fact]
    public async Task FedBuff_weights_stale_updates_and_publishes_every_K()
    {
        var jobId = FlTestBed.NewJobId();
        var definition = FlTestBed.Definition("fedbuff", clientsPerRound: 3, rounds: 3) with
        {
            GoalUpdates = 2,
            MinUpdates = 1,
            Settings = new AlgorithmSettings { BufferSize = 2, MaxStaleness = 1 },
        };
        var (_, v0) = await _bed.CreateJobAsync(jobId, definition);
        var clients = await _bed.JoinAsync(jobId, 3);
        await _bed.WaitForAsync(jobId, s => s.Selected.Length == 3, "all clients training");

        var a = FlTestBed.Delta(1);
        var b = FlTestBed.Delta(2);
        await _bed.SubmitAsync(jobId, clients[0], 1, a, 10, baseVersion: 0);
        await _bed.SubmitAsync(jobId, clients[1], 1, b, 10, baseVersion: 0);
        await _bed.WaitForVersionAsync(jobId, 1);
        var v1 = FlTestBed.FedAvg(v0, [(a, 10), (b, 10)]);
        FlTestBed.AssertClose(v1, await _bed.ModelAsync(jobId, 1));

        // Client 2 trained on version 0 (staleness 1), client 0 on version 1 (fresh).
        var stale = FlTestBed.Delta(3);
        var fresh = FlTestBed.Delta(4);
        Assert.Equal(1, (await _bed.SubmitAsync(jobId, clients[2], 2, stale, 10, baseVersion: 0)).Staleness);
        await _bed.SubmitAsync(jobId, clients[0], 2, fresh, 10, baseVersion: 1);
        var status = await _bed.WaitForVersionAsync(jobId, 2);
        var staleWeight = 10 * StalenessWeighting.Weight(1);
        var expected = v1.Select((g, i) => (float)(g + (((stale[i] * staleWeight) + (fresh[i] * 10.0)) / (staleWeight + 10)))).ToArray();
        FlTestBed.AssertClose(expected, await _bed.ModelAsync(jobId, 2));
        Assert.Equal(0.5, status.History[1].MeanStaleness);

        var tooStale = await Assert.ThrowsAsync<UpdateRejectedException>(() => _bed.SubmitAsync(jobId, clients[1], 3, FlTestBed.Delta(5), 10, baseVersion: 0));
        Assert.Equal(RejectionReason.TooStale, tooStale.Reason);
    }

    /// <summary>Coordinate-wise median, trimmed mean and Multi-Krum run on every update of the round at the top, ignoring an outlier.</summary>
    [Theory]
    [InlineData("median")]
    [InlineData("trimmedmean")]
    [InlineData("krum")]
    public async Task Robust_aggregation_ignores_an_outlier(string algorithm)
    {
        var jobId = FlTestBed.NewJobId();
        var definition = FlTestBed.Definition(algorithm, clientsPerRound: 5, rounds: 1) with
        {
            Settings = new AlgorithmSettings { TrimFraction = 0.2, KrumByzantine = 1, KrumSelected = 1 },
        };
        var (_, global) = await _bed.CreateJobAsync(jobId, definition);
        var clients = await _bed.JoinAsync(jobId, 5);
        await _bed.WaitForAsync(jobId, s => s.Selected.Length == 5, "selection");
        var honest = Enumerable.Range(0, 4).Select(i => FlTestBed.Delta(1).Select(v => v + (0.01f * i)).ToArray()).ToList();
        var outlier = Enumerable.Repeat(1000f, 15).ToArray();
        for (var i = 0; i < 4; i++)
        {
            await _bed.SubmitAsync(jobId, clients[i], 1, honest[i], 10);
        }

        await _bed.SubmitAsync(jobId, clients[4], 1, outlier, 10);
        await _bed.WaitForVersionAsync(jobId, 1);
        var model = await _bed.ModelAsync(jobId, 1);
        var all = honest.Append(outlier).Select(u => (ReadOnlyMemory<float>)u).ToList();
        var mean = new float[15];
        switch (algorithm)
        {
            case "median": RobustAggregation.CoordinateWiseMedian(all, mean); break;
            case "trimmedmean": RobustAggregation.TrimmedMean(all, 0.2, mean); break;
            default: RobustAggregation.MultiKrum(all, 1, 1, mean); break;
        }

        FlTestBed.AssertClose([.. global.Select((g, i) => g + mean[i])], model);
        Assert.All(model.Select((v, i) => v - global[i]), d => Assert.True(Math.Abs(d) < 1, $"the outlier moved a weight by {d}"));
    }

    /// <summary>With central DP each update is clipped and counts once; the noise's σ·C/n is reported with the round.</summary>
    [Fact]
    public async Task Differential_privacy_clips_updates_and_reports_the_noise()
    {
        var quiet = FlTestBed.NewJobId();
        var (_, global) = await _bed.CreateJobAsync(quiet, FlTestBed.Definition(clientsPerRound: 2, rounds: 1) with
        {
            Settings = new AlgorithmSettings { DpClipNorm = 1.0, DpNoiseMultiplier = 0 },
        });
        var clients = await _bed.JoinAsync(quiet, 2);
        await _bed.WaitForAsync(quiet, s => s.Selected.Length == 2, "selection");
        var large = FlTestBed.Delta(1).Select(v => v * 40).ToArray();
        var small = FlTestBed.Delta(2).Select(v => v / 100).ToArray();
        await _bed.SubmitAsync(quiet, clients[0], 1, large, 1000);
        await _bed.SubmitAsync(quiet, clients[1], 1, small, 1);
        await _bed.WaitForVersionAsync(quiet, 1);
        var norm = Math.Sqrt(large.Sum(v => (double)v * v));
        var expected = global.Select((g, i) => (float)(g + (((large[i] / norm) + small[i]) / 2))).ToArray();
        FlTestBed.AssertClose(expected, await _bed.ModelAsync(quiet, 1));

        var noisy = FlTestBed.NewJobId();
        await _bed.CreateJobAsync(noisy, FlTestBed.Definition(clientsPerRound: 2, rounds: 1) with
        {
            Settings = new AlgorithmSettings { DpClipNorm = 2.0, DpNoiseMultiplier = 0.5 },
        });
        clients = await _bed.JoinAsync(noisy, 2);
        await _bed.WaitForAsync(noisy, s => s.Selected.Length == 2, "selection");
        await _bed.SubmitAsync(noisy, clients[0], 1, small, 1);
        await _bed.SubmitAsync(noisy, clients[1], 1, small, 1);
        var metrics = (await _bed.WaitForVersionAsync(noisy, 1)).History[0];
        Assert.Equal(0.5, metrics.NoiseMultiplier);
        Assert.Equal(0.5 * 2.0 / 2, metrics.NoiseStandardDeviation!.Value, 9);
    }

    /// <summary>A server optimizer (FedAdam) applies the round's mean delta as its reference implementation does.</summary>
    [Fact]
    public async Task FedAdam_applies_the_server_optimizer_to_the_mean_delta()
    {
        var jobId = FlTestBed.NewJobId();
        var (_, global) = await _bed.CreateJobAsync(jobId, FlTestBed.Definition("fedadam", clientsPerRound: 2, rounds: 1));
        var clients = await _bed.JoinAsync(jobId, 2);
        await _bed.WaitForAsync(jobId, s => s.Selected.Length == 2, "selection");
        var (a, b) = (FlTestBed.Delta(1), FlTestBed.Delta(2));
        await _bed.SubmitAsync(jobId, clients[0], 1, a, 10);
        await _bed.SubmitAsync(jobId, clients[1], 1, b, 30);
        await _bed.WaitForVersionAsync(jobId, 1);

        var mean = a.Select((v, i) => (float)(((v * 10.0) + (b[i] * 30.0)) / 40)).ToArray();
        var expected = (float[])global.Clone();
        ServerOptimizers.Create("fedadam", new ServerOptimizerOptions(), 15).Step(expected, mean);
        FlTestBed.AssertClose(expected, await _bed.ModelAsync(jobId, 1), 1e-4);
    }

    /// <summary>However many clients submit, the round holds one running sum: the pool's live buffers do not grow with them.</summary>
    [Fact]
    public async Task Server_memory_does_not_grow_with_the_number_of_clients()
    {
        var jobId = FlTestBed.NewJobId();
        await _bed.CreateJobAsync(jobId, FlTestBed.Definition(clientsPerRound: 41, rounds: 1) with { GoalUpdates = 41 });
        var clients = await _bed.JoinAsync(jobId, 41);
        await _bed.WaitForAsync(jobId, s => s.Selected.Length == 41, "selection");
        long? afterFirst = null;
        for (var i = 0; i < 40; i++)
        {
            await _bed.SubmitAsync(jobId, clients[i], 1, FlTestBed.Delta(i), 10);
            afterFirst ??= _bed.Pool.GetStatistics().LiveBuffers;
        }

        // The global model and the aggregate's sum, after 1 update as after 40.
        Assert.Equal(afterFirst, _bed.Pool.GetStatistics().LiveBuffers);
        Assert.Equal(40, (await _bed.Job(jobId).Status()).Accepted);
    }

    /// <summary>FedProx runs FedAvg on the server and hands its μ to the trainers with each task.</summary>
    [Fact]
    public async Task FedProx_gives_trainers_its_proximal_term()
    {
        var jobId = FlTestBed.NewJobId();
        await _bed.CreateJobAsync(jobId, FlTestBed.Definition("fedprox", clientsPerRound: 1, rounds: 1) with { Settings = new AlgorithmSettings { ProximalMu = 0.5 } });
        var client = (await _bed.JoinAsync(jobId, 1))[0];
        var task = await _bed.Session(jobId, client).NextTask(-1, TimeSpan.FromSeconds(5));
        Assert.Equal((TrainerTaskKind.Train, 0.5), (task.Kind, task.ProximalMu));

        var plain = FlTestBed.NewJobId();
        await _bed.CreateJobAsync(plain, FlTestBed.Definition(clientsPerRound: 1, rounds: 1));
        client = (await _bed.JoinAsync(plain, 1))[0];
        Assert.Equal(0, (await _bed.Session(plain, client).NextTask(-1, TimeSpan.FromSeconds(5))).ProximalMu);
    }

    /// <summary>A definition with a problem is refused with an error naming the setting; so is a wrong-size initial model.</summary>
    [Fact]
    public async Task Bad_job_definitions_are_refused_by_name()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => _bed.CreateJobAsync(FlTestBed.NewJobId(), FlTestBed.Definition() with { GoalUpdates = 9 }));
        Assert.Contains("GoalUpdates", error.Message, StringComparison.Ordinal);
        error = await Assert.ThrowsAsync<ArgumentException>(() => _bed.CreateJobAsync(FlTestBed.NewJobId(), FlTestBed.Definition("fedsgd")));
        Assert.Contains("fedsgd", error.Message, StringComparison.Ordinal);
        error = await Assert.ThrowsAsync<ArgumentException>(() => _bed.CreateJobAsync(FlTestBed.NewJobId(), FlTestBed.Definition() with { KeepModels = -1 }));
        Assert.Contains("KeepModels is -1", error.Message, StringComparison.Ordinal);

        using var wrong = _bed.Buffer(new float[14]);
        error = await Assert.ThrowsAsync<ArgumentException>(() => _bed.Job(FlTestBed.NewJobId()).Create(FlTestBed.Definition(), wrong));
        Assert.Contains("56 bytes", error.Message, StringComparison.Ordinal);

        var jobId = FlTestBed.NewJobId();
        await _bed.CreateJobAsync(jobId, FlTestBed.Definition());
        var again = await Assert.ThrowsAsync<InvalidOperationException>(() => _bed.CreateJobAsync(jobId, FlTestBed.Definition(rounds: 9)));
        Assert.Contains("another definition", again.Message, StringComparison.Ordinal);
        var (job, _) = await _bed.CreateJobAsync(jobId, FlTestBed.Definition());
        Assert.Equal(JobPhase.Collecting, (await job.Status()).Phase);
    }

    /// <summary>Within a silo the global model a trainer reads is the job's own buffer: the same bytes, not a copy.</summary>
    [Fact]
    public async Task Reading_the_global_model_in_the_silo_copies_nothing()
    {
        var jobId = FlTestBed.NewJobId();
        await _bed.CreateJobAsync(jobId, FlTestBed.Definition());
        using var first = await _bed.Job(jobId).GetModel(0);
        using var second = await _bed.Job(jobId).GetModel(0);
        Assert.Equal(first.Descriptor.Offset, second.Descriptor.Offset);
        Assert.Equal(4, _bed.Pool.ReferenceCount(first.Descriptor)); // the job's, the blob store's (the same bytes) and ours
    }

    /// <summary>A trainer's view of its job says whether that client is selected, with the job's round and revision.</summary>
    [Fact]
    public async Task A_trainers_view_says_whether_it_is_selected()
    {
        var jobId = FlTestBed.NewJobId();
        await _bed.CreateJobAsync(jobId, FlTestBed.Definition(clientsPerRound: 1, rounds: 1));
        var clients = await _bed.JoinAsync(jobId, 2);
        var status = await _bed.WaitForAsync(jobId, s => s.Selected.Length == 1, "selection");
        var chosen = status.Selected[0];
        var other = clients.Single(c => c != chosen);

        var mine = await _bed.Job(jobId).WaitForTrainerView(chosen, -1, TimeSpan.FromSeconds(5));
        var theirs = await _bed.Job(jobId).WaitForTrainerView(other, -1, TimeSpan.FromSeconds(5));
        Assert.Equal(new TrainerView(status.Revision, 1, 0, 0, JobPhase.Collecting, Selected: true), mine);
        Assert.False(theirs.Selected);
        await Assert.ThrowsAnyAsync<Exception>(() => _bed.Job(FlTestBed.NewJobId()).WaitForTrainerView(chosen, -1, TimeSpan.FromSeconds(1)));
    }

    /// <summary>
    /// With KeepModels = 1 a published model replaces the one before in storage, which is deleted and then refused by
    /// name; the stored model is the job's own buffer, not a copy. FedBuff keeps the versions its trainers may train on.
    /// </summary>
    [Fact]
    public async Task Models_past_KeepModels_are_dropped_from_storage_and_refused_by_name()
    {
        var jobId = FlTestBed.NewJobId();
        var (_, global) = await _bed.CreateJobAsync(jobId, FlTestBed.Definition(clientsPerRound: 1, rounds: 2) with { KeepModels = 1 });
        var client = (await _bed.JoinAsync(jobId, 1))[0];
        for (var round = 1; round <= 2; round++)
        {
            await _bed.WaitForAsync(jobId, s => s.Round == round && s.Selected.Length == 1, $"round {round} starting");
            var delta = FlTestBed.Delta(round);
            await _bed.SubmitAsync(jobId, client, round, delta, 10);
            await _bed.WaitForVersionAsync(jobId, round);
            global = FlTestBed.FedAvg(global, [(delta, 10)]);
        }

        var blobs = _bed.Cluster.Silos[0].Services.GetRequiredService<IBlobStorage>();
        var ct = TestContext.Current.CancellationToken;
        Assert.Null(await blobs.ReadAsync($"fl/{jobId}/model/0", _bed.Pool, ct));
        Assert.Null(await blobs.ReadAsync($"fl/{jobId}/model/1", _bed.Pool, ct));
        using (var stored = await blobs.ReadAsync($"fl/{jobId}/model/2", _bed.Pool, ct))
        using (var latest = await _bed.Job(jobId).GetModel(2))
        {
            FlTestBed.AssertClose(global, latest.AsSpan<float>().ToArray());
            Assert.Equal(latest.Descriptor.Offset, stored!.Descriptor.Offset);
        }

        var dropped = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _bed.Job(jobId).GetModel(1));
        Assert.Contains("keeps model versions 2 to 2 (KeepModels = 1)", dropped.Message, StringComparison.Ordinal);

        var fedBuff = FlTestBed.Definition("fedbuff") with { KeepModels = 2, Settings = new AlgorithmSettings { MaxStaleness = 4 } };
        Assert.Equal((0L, 5L, 0L), (fedBuff.OldestKeptModel(4), fedBuff.OldestKeptModel(9), (fedBuff with { KeepModels = 0 }).OldestKeptModel(9)));
        Assert.Equal(8L, (FlTestBed.Definition() with { KeepModels = 2 }).OldestKeptModel(9));
    }
}
