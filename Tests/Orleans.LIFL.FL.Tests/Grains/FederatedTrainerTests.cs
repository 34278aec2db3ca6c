using System.Collections.Concurrent;
using Orleans.LIFL.Client.FL;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.TestGrains.FL;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Grains;

/// <summary>The trainer SDK against the FL grains: a whole job, an aggregator lost mid-round, and a cluster restart.</summary>
public sealed class FederatedTrainerTests
{
    /// <summary>Trainers that add a known delta each round: every published model is exactly the FedAvg of the deltas.</summary>
    [Fact]
    public async Task Trainers_run_a_job_to_completion()
    {
        await using var bed = await FlTestBed.StartAsync();
        var jobId = FlTestBed.NewJobId();
        var (_, initial) = await bed.CreateJobAsync(jobId, FlTestBed.Definition(clientsPerRound: 3, rounds: 3));
        var trainers = Enumerable.Range(0, 3).Select(i => new KnownDeltaTrainer(i)).ToList();
        await Task.WhenAll(trainers.Select((t, i) => new FederatedTrainer(bed.Grains, bed.Pool, jobId, $"c{i}", t).RunAsync(TestContext.Current.CancellationToken)))
            .WaitAsync(FlTestBed.Patience, TestContext.Current.CancellationToken);

        var expected = initial;
        for (var round = 1; round <= 3; round++)
        {
            expected = FlTestBed.FedAvg(expected, trainers.Select(t => (t.DeltaFor(round), t.Examples)));
            FlTestBed.AssertClose(expected, await bed.ModelAsync(jobId, round));
        }
    }

    /// <summary>
    /// The silo holding the round's aggregator dies after some updates were acknowledged: their trainers are told to
    /// send them again, and the published model is the FedAvg of exactly the acknowledged updates.
    /// </summary>
    [Fact]
    public async Task Acknowledged_updates_survive_the_loss_of_their_aggregator()
    {
        await using var bed = await FlTestBed.StartAsync(silos: 2);
        var jobId = FlTestBed.NewJobId();
        var (_, initial) = await bed.CreateJobAsync(jobId, FlTestBed.Definition(clientsPerRound: 4, rounds: 1));
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var trainers = Enumerable.Range(0, 4).Select(i => new KnownDeltaTrainer(i, i >= 2 ? gate.Task : Task.CompletedTask)).ToList();
        var acknowledged = new ConcurrentDictionary<string, UpdateReceipt>();
        var accepted = 0;
        var runs = trainers.Select((t, i) =>
        {
            var trainer = new FederatedTrainer(bed.Grains, bed.Pool, jobId, $"c{i}", t);
            trainer.UpdateSettled += e =>
            {
                if (e.Receipt is { } receipt)
                {
                    acknowledged[e.ClientId] = receipt;
                    Interlocked.Increment(ref accepted);
                }
            };
            return trainer.RunAsync(TestContext.Current.CancellationToken);
        }).ToList();

        await bed.WaitForAsync(jobId, s => s.Accepted == 2, "two updates acknowledged");
        var leaf = (await bed.Job(jobId).Status()).Aggregators.First(a => a.Updates > 0);
        var holder = bed.Cluster.Silos.Single(s => s.Address.ToString() == leaf.Silo);
        await bed.Cluster.KillSiloAsync(holder);
        gate.SetResult();

        try
        {
            await Task.WhenAll(runs).WaitAsync(FlTestBed.Patience, TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            var s = await bed.Job(jobId).Status();
            Assert.Fail($"The job did not complete after {holder} was killed: {s.Phase}, round {s.Round}, epoch {s.Epoch}, {s.Accepted} accepted; "
                + $"acknowledged (client:epoch) {string.Join(", ", acknowledged.Select(a => $"{a.Key}:{a.Value.Epoch}"))}.");
        }

        var status = await bed.Job(jobId).Status();
        Assert.Equal(4, acknowledged.Count);
        Assert.True(status.History[0].AggregatorsLost >= 1, "the loss of the aggregator went unnoticed");
        Assert.Equal(4, status.History[0].Accepted);
        FlTestBed.AssertClose(FlTestBed.FedAvg(initial, trainers.Select(t => (t.DeltaFor(1), t.Examples))), await bed.ModelAsync(jobId, 1));
    }

    /// <summary>Every silo stops after round 1 was published: new silos resume the job at round 2 from the stored model.</summary>
    [Fact]
    public async Task A_job_resumes_from_its_last_published_round_after_every_silo_restarted()
    {
        await using var bed = await FlTestBed.StartAsync();
        var jobId = FlTestBed.NewJobId();
        var (_, initial) = await bed.CreateJobAsync(jobId, FlTestBed.Definition(clientsPerRound: 2, rounds: 2));
        var trainers = Enumerable.Range(0, 2).Select(i => new KnownDeltaTrainer(i, rounds: 1)).ToList();
        using (var stop = new CancellationTokenSource())
        {
            var runs = trainers.Select((t, i) => new FederatedTrainer(bed.Grains, bed.Pool, jobId, $"c{i}", t).RunAsync(stop.Token)).ToList();
            await bed.WaitForVersionAsync(jobId, 1);
            await stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.WhenAll(runs));
        }

        var afterRound1 = await bed.ModelAsync(jobId, 1);
        foreach (var silo in bed.Cluster.Silos)
        {
            await bed.Cluster.KillSiloAsync(silo);
        }

        await bed.Cluster.StartAdditionalSiloAsync();
        var resumed = await bed.Job(jobId).Status();
        Assert.Equal((2, 1L, JobPhase.Collecting), (resumed.Round, resumed.ModelVersion, resumed.Phase));
        Assert.Equal(afterRound1, await bed.ModelAsync(jobId, 1));

        var again = Enumerable.Range(0, 2).Select(i => new KnownDeltaTrainer(i)).ToList();
        await Task.WhenAll(again.Select((t, i) => new FederatedTrainer(bed.Grains, bed.Pool, jobId, $"c{i}", t).RunAsync(TestContext.Current.CancellationToken)))
            .WaitAsync(FlTestBed.Patience, TestContext.Current.CancellationToken);
        var expected = FlTestBed.FedAvg(FlTestBed.FedAvg(initial, trainers.Select(t => (t.DeltaFor(1), t.Examples))), again.Select(t => (t.DeltaFor(2), t.Examples)));
        FlTestBed.AssertClose(expected, await bed.ModelAsync(jobId, 2));
    }
}
