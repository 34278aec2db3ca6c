using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.Diagnostics;
using Orleans.LIFL.Grains.FL.Algorithms;
using Orleans.LIFL.Grains.FL.Hierarchy;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Serialization;
using Orleans.LIFL.Timers;

namespace Orleans.LIFL.Grains.FL;

/// <summary>What a job persists: enough to resume from its last published round.</summary>
[GenerateSerializer]
public sealed class FlJobState
{
    [Id(0)]
    public FlJobDefinition? Definition { get; set; }

    [Id(1)]
    public JobPhase Phase { get; set; }

    [Id(2)]
    public int Round { get; set; }

    [Id(3)]
    public int Epoch { get; set; }

    [Id(4)]
    public long ModelVersion { get; set; }

    [Id(5)]
    public List<string> Selected { get; set; } = [];

    /// <summary>Sorted (ordinal), so that selection is reproducible.</summary>
    [Id(6)]
    public List<string> Available { get; set; } = [];

    [Id(7)]
    public List<RoundMetrics> History { get; set; } = [];

    [Id(8)]
    public DateTimeOffset RoundStartedAt { get; set; }

    [Id(9)]
    public ServerOptimizerState? Optimizer { get; set; }

    [Id(10)]
    public long Revision { get; set; }

    /// <summary>How many times the current round selected clients (the first draw, then top-ups).</summary>
    [Id(11)]
    public int Draws { get; set; }

    [Id(12)]
    public int AggregatorsLost { get; set; }

    /// <summary>Where updates arrived in past rounds and how fast aggregators went: what the next hierarchy is planned from.</summary>
    [Id(13)]
    public ArrivalEstimator? Arrivals { get; set; }

    /// <summary>The oldest model version still stored; those before it were dropped (see <see cref="FlJobDefinition.KeepModels"/>).</summary>
    [Id(14)]
    public long OldestModelVersion { get; set; }
}

[KeepAlive]
public sealed partial class FlJobGrain(
    SharedBufferPool pool,
    IBlobStorage models,
    IClusterResources resources,
    TimeProvider time,
    ILogger<FlJobGrain> logger,
    [PersistentState("job")] IPersistentState<FlJobState> stored) : Grain, IFlJobGrain
{
    private readonly Dictionary<RejectionReason, int> _rejected = [];
    private SharedBuffer? _global;
    private IServerOptimizer? _optimizer;
    private TaskCompletionSource _changed = NewSignal();
    private TaskCompletionSource _progressed = NewSignal();
    private long _progress;
    private DateTimeOffset? _deadline;
    private IGrainTimer? _deadlineTimer;
    private bool _closing;

    private FlJobState State => stored.State;

    private FlJobDefinition Definition => State.Definition ?? throw Unknown();

    private string JobId => this.GetPrimaryKeyString();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (State.Definition is not { } definition)
        {
            return;
        }

        _global = await models.ReadAsync(ModelKey(State.ModelVersion), pool, cancellationToken)
            ?? throw new InvalidOperationException($"Job {JobId}: model version {State.ModelVersion} is missing from storage.");
        _optimizer = CreateOptimizer(definition);
        if (State.Optimizer is { } optimizerState)
        {
            _optimizer.ImportState(optimizerState);
        }

        if (State.Phase is JobPhase.Collecting or JobPhase.Aggregating)
        {
            // The previous activation's aggregator may have died with it: a new epoch, and what it held is sent again.
            State.Phase = JobPhase.Collecting;
            if (State.Selected.Count > 0)
            {
                State.Epoch++;
                State.AggregatorsLost++;
            }

            State.Revision++;
            await stored.WriteStateAsync();
            LogResumed(logger, JobId, State.Round, State.Epoch, State.ModelVersion);
            ArmDeadline(definition.RoundDeadline);
        }
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _deadlineTimer?.Dispose();
        _global?.Dispose();
        _global = null;
        return Task.CompletedTask;
    }

    public async Task<JobStatus> Create(FlJobDefinition definition, SharedBuffer initialModel)
    {
        ArgumentNullException.ThrowIfNull(definition);
        ArgumentNullException.ThrowIfNull(initialModel);
        using (initialModel)
        {
            if (State.Definition is { } existing)
            {
                return existing == definition
                    ? StatusNow()
                    : throw new InvalidOperationException($"Job {JobId} already exists with another definition ({existing.AlgorithmName}, {existing.Model}).");
            }

            if (definition.Problem() is { } problem)
            {
                throw new ArgumentException($"Job {JobId}: {problem}.", nameof(definition));
            }

            var weights = initialModel.AsSpan<float>();
            if (initialModel.Length != definition.Model.Bytes)
            {
                throw new ArgumentException(
                    $"Job {JobId}: the initial model has {initialModel.Length:N0} bytes; {definition.Model} takes {definition.Model.Bytes:N0}.", nameof(initialModel));
            }

            if (AggregationKernels.FirstNonFinite(weights) is var bad and >= 0)
            {
                throw new ArgumentException($"Job {JobId}: the initial model's value at index {bad} is {weights[bad]}.", nameof(initialModel));
            }

            // The job's own copy: the creator may go on writing its buffer.
            var global = pool.Rent(initialModel.Length);
            initialModel.Span.CopyTo(global.Span);
            try
            {
                await models.WriteAsync(ModelKey(0), global);
            }
            catch
            {
                global.Dispose();
                throw;
            }

            _global = global;
            _optimizer = CreateOptimizer(definition);

            State.Definition = definition;
            State.Phase = JobPhase.Collecting;
            State.Round = 1;
            State.Epoch = 0;
            State.ModelVersion = 0;
            State.Revision++;
            await stored.WriteStateAsync();
            await GrainFactory.GetGrain<Index.IWorkloadIndexGrain>(Index.WorkloadIndexes.FlJobs).Add(JobId);
            LogCreated(logger, JobId, definition.AlgorithmName, definition.Model.Parameters, definition.Rounds, definition.ClientsPerRound);
            await TryStartRoundAsync(deadlinePassed: false);
            ArmDeadline(definition.RoundDeadline);
            Signal(changed: true);
            return StatusNow();
        }
    }

    public Task<JobStatus> Status() => Task.FromResult(StatusNow());

    public async Task<JobStatus> WaitForChange(long knownRevision, TimeSpan wait)
    {
        await WhenRevisionPassesAsync(knownRevision, wait);
        return StatusNow();
    }

    public async Task<TrainerView> WaitForTrainerView(string clientId, long knownRevision, TimeSpan wait)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clientId);
        _ = Definition;
        await WhenRevisionPassesAsync(knownRevision, wait);
        return new TrainerView(State.Revision, State.Round, State.Epoch, State.ModelVersion, State.Phase, State.Selected.Contains(clientId));
    }

    private async Task WhenRevisionPassesAsync(long knownRevision, TimeSpan wait)
    {
        if (State.Revision <= knownRevision)
        {
            await Task.WhenAny(_changed.Task, Task.Delay(Bounded(wait), time));
        }
    }

    public async Task<JobStatus> WaitForProgress(long knownProgress, TimeSpan wait)
    {
        if (ProgressNow() <= knownProgress)
        {
            await Task.WhenAny(_progressed.Task, Task.Delay(Bounded(wait), time));
        }

        return StatusNow();
    }

    public async Task<SharedBuffer> GetModel(long version)
    {
        _ = Definition;
        if (version == State.ModelVersion && _global is { } global)
        {
            return global;
        }

        if (version < 0 || version > State.ModelVersion)
        {
            throw new ArgumentOutOfRangeException(nameof(version), version, $"Job {JobId} has model versions 0 to {State.ModelVersion}.");
        }

        if (version < State.OldestModelVersion)
        {
            throw new ArgumentOutOfRangeException(
                nameof(version),
                version,
                $"Job {JobId} keeps model versions {State.OldestModelVersion} to {State.ModelVersion} (KeepModels = {Definition.KeepModels}); version {version} was dropped.");
        }

        var stored = await models.ReadAsync(ModelKey(version), pool)
            ?? throw new InvalidOperationException($"Job {JobId}: model version {version} is missing from storage.");
        return stored.MoveToCaller();
    }

    public async Task<FlJobDefinition> Register(string clientId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clientId);
        var definition = Definition;
        var index = State.Available.BinarySearch(clientId, StringComparer.Ordinal);
        if (index < 0)
        {
            State.Available.Insert(~index, clientId);
            await stored.WriteStateAsync();
            if (State.Phase == JobPhase.Collecting && !await TryStartRoundAsync(deadlinePassed: false) && definition.IsAsynchronous)
            {
                // FedBuff takes new clients into the running buffer, up to ClientsPerRound training at once.
                await TopUpAsync(definition.ClientsPerRound - State.Selected.Count);
            }

            Signal(changed: false);
        }

        return definition;
    }

    public async Task Unregister(string clientId)
    {
        var index = State.Available.BinarySearch(clientId, StringComparer.Ordinal);
        if (index >= 0)
        {
            State.Available.RemoveAt(index);
            await stored.WriteStateAsync();
            Signal(changed: false);
        }
    }

    public async Task<AggregationLease> Lease(int round, string clientId, long baseVersion, string silo)
    {
        var definition = Definition;
        if (State.Available.BinarySearch(clientId, StringComparer.Ordinal) < 0)
        {
            throw new UpdateRejectedException(RejectionReason.UnknownClient, $"client {clientId} has not joined job {JobId}");
        }

        if (State.Phase == JobPhase.Completed)
        {
            throw new UpdateRejectedException(RejectionReason.RoundClosed, $"job {JobId} is complete (its {definition.Rounds} rounds were published)");
        }

        if (definition.IsAsynchronous)
        {
            var staleness = State.ModelVersion - baseVersion;
            if (staleness < 0)
            {
                throw new UpdateRejectedException(RejectionReason.TooStale, $"the update is based on version {baseVersion}; job {JobId} has published up to {State.ModelVersion}");
            }

            if (staleness > definition.Settings.MaxStaleness)
            {
                throw new UpdateRejectedException(RejectionReason.TooStale,
                    $"the update is based on version {baseVersion}, {staleness} versions behind {State.ModelVersion} (at most {definition.Settings.MaxStaleness} accepted)");
            }

            return await LeaseLeafAsync(clientId, silo, staleness);
        }

        if (round != State.Round || State.Phase != JobPhase.Collecting || State.Selected.Count == 0)
        {
            throw new UpdateRejectedException(RejectionReason.RoundClosed, round < State.Round || (round == State.Round && State.Phase != JobPhase.Collecting)
                ? $"round {round} of job {JobId} is closed (the job is at round {State.Round}, {State.Phase})"
                : $"round {round} of job {JobId} is not open (the job is at round {State.Round}, {(State.Selected.Count == 0 ? "waiting for clients" : State.Phase)})");
        }

        if (!State.Selected.Contains(clientId))
        {
            throw new UpdateRejectedException(RejectionReason.NotSelected, $"client {clientId} was not selected for round {round} of job {JobId}");
        }

        if (baseVersion != State.ModelVersion)
        {
            throw new UpdateRejectedException(RejectionReason.TooStale,
                $"the update is based on model version {baseVersion}; round {round} of job {JobId} trains from version {State.ModelVersion}");
        }

        return await LeaseLeafAsync(clientId, silo, 0);
    }

    private async Task<AggregationLease> LeaseLeafAsync(string clientId, string silo, long staleness)
    {
        var hierarchy = await HierarchyAsync();
        var known = resources.ActiveSilos().FirstOrDefault(s => s.Silo.ToString() == silo);
        var node = known.Silo is null ? "" : NodeOf(known.Silo, known.Statistics);
        return new AggregationLease(State.Round, State.Epoch, hierarchy.LeafFor(silo, node, clientId, Definition.Aggregation.LocalityAware), staleness, hierarchy.Assignment);
    }

    public async Task Progress(int round, int epoch, string aggregator, int accepted, Guid incarnation, string silo, bool isNew)
    {
        if (round != State.Round || epoch != State.Epoch || State.Phase != JobPhase.Collecting || _hierarchy?.Assignment != $"{JobId}/{round}/{epoch}")
        {
            return;
        }

        if (!_hierarchy.Report(aggregator, incarnation, accepted))
        {
            // The aggregator came back empty on another silo: what the first one held is lost and must be resent.
            await StartNewEpochAsync();
            return;
        }

        if (isNew)
        {
            _arrivals[silo] = _arrivals.GetValueOrDefault(silo) + 1;
            _lastArrival = time.GetTimestamp();
        }

        Signal(changed: false);
        var definition = Definition;
        if (Accepted >= (definition.IsAsynchronous ? definition.Settings.BufferSize : definition.GoalUpdates))
        {
            await CloseRoundAsync(atDeadline: false);
        }
    }

    public Task Rejected(int round, RejectionReason reason)
    {
        _rejected[reason] = _rejected.GetValueOrDefault(reason) + 1;
        Signal(changed: false);
        return Task.CompletedTask;
    }

    public async Task AggregatorLost(int round, int epoch)
    {
        if (round == State.Round && epoch == State.Epoch && State.Phase == JobPhase.Collecting)
        {
            await StartNewEpochAsync();
        }
    }

    public async Task ReportAccuracy(long modelVersion, double accuracy)
    {
        var index = State.History.FindIndex(m => m.ModelVersion == modelVersion);
        if (index < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(modelVersion), modelVersion, $"Job {JobId} published no model version {modelVersion}.");
        }

        State.History[index] = State.History[index] with { Accuracy = accuracy };
        await stored.WriteStateAsync();
        Signal(changed: false);
    }

    /// <summary>Selects the round's clients once enough are available (or, at the deadline, at least the minimum).</summary>
    private async Task<bool> TryStartRoundAsync(bool deadlinePassed)
    {
        var definition = Definition;
        if (State.Phase != JobPhase.Collecting || State.Selected.Count > 0)
        {
            return false;
        }

        var needed = definition.IsAsynchronous ? 1
            : deadlinePassed ? definition.MinUpdates
            : Math.Max(definition.ClientsPerRound, definition.MinAvailableClients);
        if (State.Available.Count < needed)
        {
            return false;
        }

        State.Draws = 0;
        State.AggregatorsLost = 0;
        State.RoundStartedAt = time.GetUtcNow();
        _roundStartTimestamp = time.GetTimestamp();
        _rejected.Clear();
        _arrivals.Clear();
        await TopUpAsync(definition.ClientsPerRound);
        ArmDeadline(definition.RoundDeadline);
        await BeginRoundAggregationAsync();
        LogRoundStarted(logger, JobId, State.Round, State.Selected.Count, State.Available.Count);
        return true;
    }

    /// <summary>Adds up to <paramref name="count"/> clients drawn uniformly (seeded by job, round and draw) from the available ones not yet selected.</summary>
    private async Task TopUpAsync(int count)
    {
        var candidates = State.Available.Where(c => !State.Selected.Contains(c)).ToList();
        if (count <= 0 || candidates.Count == 0)
        {
            return;
        }

        var random = new Random(unchecked((Definition.Seed * 1_000_003) + (State.Round * 7_919) + State.Draws));
        var take = Math.Min(count, candidates.Count);
        for (var i = 0; i < take; i++)
        {
            var j = random.Next(i, candidates.Count);
            (candidates[i], candidates[j]) = (candidates[j], candidates[i]);
            State.Selected.Add(candidates[i]);
        }

        State.Draws++;
        State.Revision++;
        await stored.WriteStateAsync();
        Signal(changed: true);
    }

    private async Task OnDeadlineAsync(CancellationToken cancellationToken)
    {
        var definition = Definition;
        if (State.Phase != JobPhase.Collecting || _closing)
        {
            return;
        }

        if (State.Selected.Count == 0)
        {
            if (!await TryStartRoundAsync(deadlinePassed: true))
            {
                ArmDeadline(definition.RoundDeadline);
            }

            return;
        }

        if (Accepted >= definition.MinUpdates)
        {
            await CloseRoundAsync(atDeadline: true);
            return;
        }

        // Not enough by the deadline: nobody's update is dropped; more clients are asked and the round goes on.
        LogExtended(logger, JobId, State.Round, Accepted, definition.MinUpdates);
        await TopUpAsync(Math.Max(definition.MinUpdates - Accepted, 1));
        ArmDeadline(definition.RoundDeadline);
    }

    private async Task StartNewEpochAsync()
    {
        State.Epoch++;
        State.AggregatorsLost++;
        State.Revision++;
        _hierarchy = null;
        await stored.WriteStateAsync();
        LogAggregatorLost(logger, JobId, State.Round, State.Epoch - 1);
        ArmDeadline(Definition.RoundDeadline);
        Signal(changed: true);
        await HierarchyAsync();
    }

    private async Task CloseRoundAsync(bool atDeadline)
    {
        if (_closing)
        {
            return;
        }

        _closing = true;
        try
        {
            var definition = Definition;
            var closedAt = time.GetTimestamp();
            // Not a change trainers act on: their sessions sleep through the aggregation instead of a hundred of them
            // waking, answering and asking again while the step runs (on the same cores). Progress watchers see it.
            State.Phase = JobPhase.Aggregating;
            Signal(changed: false);

            PartialAggregate aggregate;
            try
            {
                var hierarchy = await HierarchyAsync();
                aggregate = await GrainFactory.GetGrain<IAggregatorGrain>(hierarchy.TopKey).Finish(hierarchy.Assignment);
                if (!hierarchy.Matches(aggregate))
                {
                    // Finished by a new, empty activation somewhere in the tree: one that held updates is gone.
                    aggregate.Dispose();
                    State.Phase = JobPhase.Collecting;
                    await StartNewEpochAsync();
                    return;
                }
            }
            catch (Exception error) when (error is SiloUnavailableException or GrainCallTimeoutException or RuntimeUnavailableException or UpdateRejectedException)
            {
                State.Phase = JobPhase.Collecting;
                await StartNewEpochAsync();
                return;
            }

            using (aggregate)
            {
                if (aggregate.Count == 0)
                {
                    State.Phase = JobPhase.Collecting;
                    State.Revision++;
                    await stored.WriteStateAsync();
                    Signal(changed: true);
                    return;
                }

                await PublishAsync(definition, aggregate, closedAt, time.GetTimestamp(), atDeadline);
            }
        }
        finally
        {
            _closing = false;
        }
    }

    private async Task PublishAsync(FlJobDefinition definition, PartialAggregate aggregate, long closedAt, long finishedAt, bool atDeadline)
    {
        var parameters = definition.Model.Parameters;
        double? noise = null;
        SharedBuffer next;
        if (aggregate.Sum is not null && definition.AlgorithmName is not ("median" or "trimmedmean" or "krum") && definition.Settings.DpClipNorm is null)
        {
            // The weighted mean: the next model in one pass over the global model and the round's sums (the leaves'
            // as the hierarchy handed them up), their pages mapped here in a call each rather than a fault per page.
            // It is written over the first sum when the aggregate holds the node's only reference to it (the
            // aggregators handed it up and let go): no new buffer whose pages the kernel would allocate and zero,
            // and one model less in memory. The step reads each stretch of the first sum before it writes it.
            var first = aggregate.Sums.First();
            next = pool.ReferenceCount(first.Descriptor) == 1 ? first.Share() : pool.Rent(definition.Model.Bytes);
            next.Prefault(forWrite: true);
            var sums = new List<ReadOnlyMemory<float>>();
            foreach (var part in aggregate.Sums)
            {
                // The sum the step writes over was mapped for writing just now.
                if (part.Descriptor.Offset != next.Descriptor.Offset)
                {
                    part.Prefault(forWrite: false);
                }

                sums.Add(part.AsMemory<float>().Slice(0, parameters));
            }

            _optimizer!.Step(_global!.AsSpan<float>()[..parameters], sums, (float)(1.0 / aggregate.TotalWeight), next.AsSpan<float>()[..parameters]);
        }
        else
        {
            next = pool.Rent(definition.Model.Bytes);
            aggregate.Flatten();
            // The mean goes over the round's sum when there is one (done with after this), else into a buffer of its own.
            using var rented = aggregate.Sum is null ? pool.Rent(definition.Model.Bytes) : null;
            var mean = (aggregate.Sum ?? rented!).AsSpan<float>()[..parameters];
            MeanUpdate(definition, aggregate, mean, out noise);
            _global!.Span.CopyTo(next.Span);
            _optimizer!.Step(next.AsSpan<float>()[..parameters], mean);
        }

        var stepped = time.GetTimestamp();
        var version = State.ModelVersion + 1;
        try
        {
            // Kept by reference where the store is memory (no copy); streamed from the pool into PostgreSQL in a cluster.
            await models.WriteAsync(ModelKey(version), next);
        }
        catch
        {
            next.Dispose();
            throw;
        }

        var saved = time.GetTimestamp();

        var now = time.GetUtcNow();
        var hierarchy = _hierarchy!;
        var usage = Usage(_roundStartSamples, await SampleSilosAsync(resetPeak: false));
        var metrics = new RoundMetrics
        {
            Round = State.Round,
            ModelVersion = version,
            Accepted = aggregate.Count,
            Rejected = _rejected.Values.Sum(),
            RejectedByReason = new SortedDictionary<string, int>(_rejected.ToDictionary(r => r.Key.ToString(), r => r.Value), StringComparer.Ordinal),
            // One clock for both durations (the round's start is on the monotonic clock unless this activation resumed it).
            RoundMilliseconds = _roundStartTimestamp != 0 ? time.GetElapsedTime(_roundStartTimestamp).TotalMilliseconds : (now - State.RoundStartedAt).TotalMilliseconds,
            AggregationMilliseconds = time.GetElapsedTime(closedAt).TotalMilliseconds,
            AggregatorsLost = State.AggregatorsLost,
            ClosedAtDeadline = atDeadline,
            PublishedAt = now,
            NoiseMultiplier = definition.Settings.DpClipNorm is null ? null : definition.Settings.DpNoiseMultiplier,
            NoiseStandardDeviation = noise,
            MeanStaleness = definition.IsAsynchronous ? aggregate.TotalStaleness / aggregate.Count : null,
            Aggregators = hierarchy.Plan.Count,
            HierarchyDepth = hierarchy.Plan.Depth,
            ColdStarts = hierarchy.ColdStarts,
            WarmStarts = hierarchy.WarmStarts,
            CpuSeconds = usage.CpuSeconds,
            BytesCopied = usage.BytesCopied,
            PeakMemoryBytes = usage.PeakMemoryBytes,
            Hierarchy = hierarchy.Describe(),
            FinishMilliseconds = time.GetElapsedTime(closedAt, finishedAt).TotalMilliseconds,
            StepMilliseconds = time.GetElapsedTime(finishedAt, stepped).TotalMilliseconds,
            StoreMilliseconds = time.GetElapsedTime(stepped, saved).TotalMilliseconds,
        };

        // What the next round's hierarchy is planned from: where updates arrived, how long they took, how fast aggregation went.
        var window = _lastArrival == 0 ? TimeSpan.Zero : time.GetElapsedTime(_roundStartTimestamp, _lastArrival);
        var estimator = State.Arrivals!.Observe(_arrivals, window);
        if (aggregate.AccumulateSeconds > 0 && aggregate.AccumulatedBytes > 0)
        {
            estimator = estimator.ObserveThroughput(aggregate.AccumulatedBytes / aggregate.AccumulateSeconds);
        }

        State.Arrivals = estimator;

        State.ModelVersion = version;
        var dropFrom = State.OldestModelVersion;
        State.OldestModelVersion = Math.Max(dropFrom, definition.OldestKeptModel(version));
        State.History.Add(metrics);
        State.Optimizer = _optimizer!.ExportState();
        State.Selected = definition.IsAsynchronous ? State.Selected : [];
        State.Epoch = 0;
        State.Round++;
        State.Phase = version >= definition.Rounds ? JobPhase.Completed : JobPhase.Collecting;
        State.Revision++;
        await stored.WriteStateAsync();

        var previous = _global;
        _global = next;
        previous?.Dispose();
        await DropModelsAsync(dropFrom, State.OldestModelVersion);
        _hierarchy = null;
        _rejected.Clear();
        LogPublished(logger, JobId, metrics.Round, version, metrics.Accepted, metrics.AggregationMilliseconds);
        Signal(changed: true);
        if (State.Phase == JobPhase.Collecting)
        {
            State.RoundStartedAt = now;
            if (!definition.IsAsynchronous)
            {
                await TryStartRoundAsync(deadlinePassed: false);
            }
            else
            {
                await BeginRoundAggregationAsync();
            }

            ArmDeadline(definition.RoundDeadline);
        }
        else
        {
            _deadlineTimer?.Dispose();
            _deadlineTimer = null;
            _deadline = null;
        }
    }

    /// <summary>The round's mean update from its aggregate: the algorithm's (robust) combination, with DP noise when configured.</summary>
    private void MeanUpdate(FlJobDefinition definition, PartialAggregate aggregate, Span<float> mean, out double? noise)
    {
        noise = null;
        var parameters = definition.Model.Parameters;
        mean = mean[..parameters];
        switch (definition.AlgorithmName)
        {
            case "median":
                RobustAggregation.CoordinateWiseMedian(Memories(aggregate), mean);
                return;
            case "trimmedmean":
                RobustAggregation.TrimmedMean(Memories(aggregate), definition.Settings.TrimFraction, mean);
                return;
            case "krum":
                var f = definition.Settings.KrumByzantine;
                var m = definition.Settings.KrumSelected > 0 ? definition.Settings.KrumSelected : aggregate.Count - f;
                RobustAggregation.MultiKrum(Memories(aggregate), f, Math.Clamp(m, 1, aggregate.Count), mean);
                return;
        }

        AggregationKernels.Scale(aggregate.Sum!.AsSpan<float>()[..parameters], (float)(1.0 / aggregate.TotalWeight), mean);
        if (definition.Settings.DpClipNorm is { } clip)
        {
            var deviation = DifferentialPrivacy.NoiseStandardDeviation(clip, definition.Settings.DpNoiseMultiplier, aggregate.Count);
            DifferentialPrivacy.AddGaussianNoise(mean, deviation, new Random(unchecked((definition.Seed * 31) + State.Round)));
            noise = deviation;
        }
    }

    private static List<ReadOnlyMemory<float>> Memories(PartialAggregate aggregate) =>
        [.. aggregate.Retained.Select(b => (ReadOnlyMemory<float>)b.AsMemory<float>())];

    private void ArmDeadline(TimeSpan after)
    {
        _deadline = time.GetUtcNow() + after;
        if (_deadlineTimer is null)
        {
            _deadlineTimer = RegisterGrainTimer(OnDeadlineAsync, new GrainTimerCreationOptions(after, Timeout.InfiniteTimeSpan) { KeepAlive = true });
        }
        else
        {
            _deadlineTimer.Change(after, Timeout.InfiniteTimeSpan);
        }
    }

    private JobStatus StatusNow()
    {
        var definition = State.Definition;
        return new JobStatus
        {
            JobId = JobId,
            Revision = State.Revision,
            Progress = ProgressNow(),
            Phase = definition is null ? JobPhase.None : State.Phase,
            Round = State.Round,
            Epoch = State.Epoch,
            ModelVersion = State.ModelVersion,
            Selected = [.. State.Selected],
            Accepted = Accepted,
            Aggregators = _hierarchy?.Describe() ?? [],
            Rejected = _rejected.Values.Sum(),
            Goal = definition is null ? 0 : definition.IsAsynchronous ? definition.Settings.BufferSize : definition.GoalUpdates,
            Deadline = State.Phase == JobPhase.Collecting ? _deadline : null,
            AvailableClients = State.Available.Count,
            History = [.. State.History],
            Rounds = definition?.Rounds ?? 0,
            Algorithm = definition?.AlgorithmName ?? "",
        };
    }

    private long ProgressNow() => State.Revision + _progress;

    /// <summary>Wakes the waiters: those of every change, and (for structural ones) those of <see cref="WaitForChange"/>.</summary>
    private void Signal(bool changed)
    {
        _progress++;
        Interlocked.Exchange(ref _progressed, NewSignal()).TrySetResult();
        if (changed)
        {
            Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();
        }
    }

    private IServerOptimizer CreateOptimizer(FlJobDefinition definition) =>
        ServerOptimizers.Create(
            definition.AlgorithmName is "median" or "trimmedmean" or "krum" ? "fedavg" : definition.AlgorithmName,
            new ServerOptimizerOptions
            {
                ServerLearningRate = definition.Settings.ServerLearningRate,
                Momentum = definition.Settings.Momentum,
                Beta1 = definition.Settings.Beta1,
                Beta2 = definition.Settings.Beta2,
                Tau = definition.Settings.Tau,
            },
            definition.Model.Parameters);

    /// <summary>Updates in the current round's aggregate, as its aggregators reported them.</summary>
    private int Accepted => _hierarchy?.Assignment == $"{JobId}/{State.Round}/{State.Epoch}" ? _hierarchy.Accepted : 0;

    /// <summary>Plans the round's hierarchy and samples the silos' resources as the round begins.</summary>
    private async Task BeginRoundAggregationAsync()
    {
        if (Definition.IsAsynchronous)
        {
            _roundStartTimestamp = time.GetTimestamp();
        }

        _roundStartSamples = await SampleSilosAsync(resetPeak: true);
        _lastArrival = 0;
        await HierarchyAsync();
    }

    /// <summary>CPU seconds and bytes copied by the silos' processes during the round, and the sum of their peak memory (each process once).</summary>
    private static (double CpuSeconds, long BytesCopied, long PeakMemoryBytes) Usage(ImmutableArray<SiloSample> start, ImmutableArray<SiloSample> end)
    {
        var before = start.GroupBy(s => s.Process).ToDictionary(g => g.Key, g => g.First());
        var cpu = 0.0;
        var copied = 0L;
        var peak = 0L;
        foreach (var sample in end.GroupBy(s => s.Process).Select(g => g.First()))
        {
            peak += sample.PeakResidentBytes;
            if (before.TryGetValue(sample.Process, out var first))
            {
                cpu += sample.CpuSeconds - first.CpuSeconds;
                copied += sample.BytesCopied - first.BytesCopied;
            }
        }

        return (cpu, copied, peak);
    }

    private string ModelKey(long version) => $"fl/{JobId}/model/{version}";

    /// <summary>
    /// Deletes the stored models of versions [<paramref name="from"/>, <paramref name="to"/>), which the job state no
    /// longer offers. A failed delete leaves an unreachable blob, said in the log; it never fails the round.
    /// </summary>
    private async Task DropModelsAsync(long from, long to)
    {
        for (var version = from; version < to; version++)
        {
            try
            {
                await models.DeleteAsync(ModelKey(version));
            }
            catch (Exception error) when (error is not OutOfMemoryException)
            {
                LogModelNotDropped(logger, JobId, version, error);
            }
        }
    }

    private UpdateRejectedException Unknown() => new(RejectionReason.UnknownJob, $"there is no job {JobId}");

    private static TimeSpan Bounded(TimeSpan wait) => wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromMinutes(4) ? TimeSpan.FromMinutes(4) : wait;

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    [LoggerMessage(EventId = 7001, Level = LogLevel.Information, Message = "Job {Job} created: {Algorithm}, {Parameters} parameters, {Rounds} rounds of {Clients} clients")]
    private static partial void LogCreated(ILogger logger, string job, string algorithm, int parameters, int rounds, int clients);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "Job {Job} round {Round}: selected {Selected} of {Available} available clients")]
    private static partial void LogRoundStarted(ILogger logger, string job, int round, int selected, int available);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Information, Message = "Job {Job} round {Round} published model version {Version} from {Accepted} updates ({AggregationMs:0.0} ms)")]
    private static partial void LogPublished(ILogger logger, string job, int round, long version, int accepted, double aggregationMs);

    [LoggerMessage(EventId = 7004, Level = LogLevel.Warning, Message = "Job {Job} round {Round}: the aggregator of epoch {Epoch} is lost; its clients resend")]
    private static partial void LogAggregatorLost(ILogger logger, string job, int round, int epoch);

    [LoggerMessage(EventId = 7005, Level = LogLevel.Information, Message = "Job {Job} round {Round}: deadline passed with {Accepted} updates of the {Min} needed; more clients selected")]
    private static partial void LogExtended(ILogger logger, string job, int round, int accepted, int min);

    [LoggerMessage(EventId = 7007, Level = LogLevel.Information, Message = "Job {Job} round {Round} (epoch {Epoch}): {Aggregators} aggregators in {Depth} levels ({Warm} warm, {Cold} cold)")]
    private static partial void LogPlanned(ILogger logger, string job, int round, int epoch, int aggregators, int depth, int warm, int cold);

    [LoggerMessage(EventId = 7006, Level = LogLevel.Information, Message = "Job {Job} resumed at round {Round} (epoch {Epoch}) from model version {Version}")]
    private static partial void LogResumed(ILogger logger, string job, int round, int epoch, long version);

    [LoggerMessage(EventId = 7008, Level = LogLevel.Warning, Message = "Job {Job}: model version {Version} is past what the job keeps but could not be deleted from blob storage")]
    private static partial void LogModelNotDropped(ILogger logger, string job, long version, Exception error);
}
