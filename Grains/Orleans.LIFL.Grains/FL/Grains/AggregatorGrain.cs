using System.Collections.Immutable;
using System.Diagnostics;
using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL.Algorithms;
using Orleans.LIFL.Grains.FL.Hierarchy;
using Orleans.LIFL.Serialization;
using Orleans.LIFL.Timers;

namespace Orleans.LIFL.Grains.FL;

/// <summary>
/// A serverless aggregator: assigned to one round (in one epoch) of one job at a time, as a leaf, middle or top of
/// the round's hierarchy, then kept warm for the next assignment, of this job or another. A leaf folds each update
/// into its running weighted sum the moment it arrives, in one vectorized pass over the update's shared buffer, and
/// lets go of it (eager; lazy keeps the updates and sums them at the end). At the round's close the top asks its
/// children for their partial aggregates, which ask theirs. Key: "node/silo/slot": the silo it is meant to run on
/// (see <see cref="LocalityAwarePlacementAttribute"/>).
/// </summary>
public interface IAggregatorGrain : IGrainWithStringKey
{
    /// <summary>Takes on a round (dropping what a previous assignment of the same job left); refused while another job's round holds it.</summary>
    Task<AggregatorAssigned> Assign(AggregatorAssignment assignment);

    /// <summary>Folds the update in (or keeps it); says how many the aggregate has.</summary>
    Task<AggregatorAddResult> Add(string assignment, AggregationInput input, SharedBuffer update);

    /// <summary>Closes the aggregate (with its children's) and hands it up; later updates are refused (round closed).</summary>
    [ResponseTimeout("00:05:00")]
    Task<PartialAggregate> Finish(string assignment);
}

/// <summary>What an aggregator is to do in a round.</summary>
[GenerateSerializer]
[Immutable]
public sealed record AggregatorAssignment
{
    [Id(0)]
    public required string JobId { get; init; }

    [Id(1)]
    public int Round { get; init; }

    [Id(2)]
    public int Epoch { get; init; }

    [Id(3)]
    public AggregatorRole Role { get; init; }

    /// <summary>The keys of the aggregators whose partial aggregates this one combines (none for a leaf).</summary>
    [Id(4)]
    public ImmutableArray<string> Children { get; init; } = [];

    /// <summary>Sum the updates at the close instead of on arrival (the comparison mode).</summary>
    [Id(5)]
    public bool Lazy { get; init; }

    /// <summary>How long to stay active, unassigned, for the next round or job.</summary>
    [Id(6)]
    public TimeSpan WarmWindow { get; init; }

    /// <summary>The round this assignment is for, as updates and closes name it.</summary>
    public string Id => $"{JobId}/{Round}/{Epoch}";
}

/// <param name="Incarnation">The activation taking the assignment (a new one means the previous one died with what it held).</param>
/// <param name="Warm">The activation served an earlier assignment: no activation was needed.</param>
[GenerateSerializer]
[Immutable]
public sealed record AggregatorAssigned([property: Id(0)] Guid Incarnation, [property: Id(1)] bool Warm, [property: Id(2)] string Silo);

/// <param name="Count">Updates in this aggregator's aggregate now.</param>
/// <param name="AlreadyIncluded">The same update (id and bytes) was added before: it counts once.</param>
/// <param name="Incarnation">The aggregator's activation: another value under the same key means the earlier one died with what it held.</param>
[GenerateSerializer]
[Immutable]
public sealed record AggregatorAddResult([property: Id(0)] int Count, [property: Id(1)] bool AlreadyIncluded, [property: Id(2)] Guid Incarnation);

/// <summary>An aggregator of the round is serving another job's round: the job tries another.</summary>
public sealed class AggregatorBusyException(string message) : Exception(message);

// Reentrant so that updates arriving together are folded together: while one Add folds, the others queue up for the next pass.
[Reentrant]
[LocalityAwarePlacement]
public sealed partial class AggregatorGrain(SharedBufferPool pool, ILogger<AggregatorGrain> logger) : Grain, IAggregatorGrain
{
    private readonly Dictionary<string, ulong> _checksums = new(StringComparer.Ordinal);
    private readonly List<(SharedBuffer Update, double Scale)> _lazy = [];
    private readonly List<Pending> _pending = [];
    private Task? _folding;

    // A virtual actor whose silo died comes back, empty, at the next call: the job tells the two apart by this.
    private readonly Guid _incarnation = Guid.NewGuid();
    private PartialAggregate _aggregate = new();
    private AggregatorAssignment? _assignment;
    private bool _finished = true;
    private int _assignments;
    private IGrainTimer? _coolDown;

    public Task<AggregatorAssigned> Assign(AggregatorAssignment assignment)
    {
        ArgumentNullException.ThrowIfNull(assignment);
        if (_assignment is { } current && !_finished && current.JobId != assignment.JobId)
        {
            throw new AggregatorBusyException($"aggregator {this.GetPrimaryKeyString()} serves round {current.Id}");
        }

        Reset();
        _assignment = assignment;
        _finished = false;
        _coolDown?.Dispose();
        _coolDown = null;
        var warm = _assignments++ > 0;
        LogAssigned(logger, this.GetPrimaryKeyString(), assignment.Id, assignment.Role, warm);
        return Task.FromResult(new AggregatorAssigned(_incarnation, warm, GrainContext.Silo.ToString()));
    }

    public async Task<AggregatorAddResult> Add(string assignment, AggregationInput input, SharedBuffer update)
    {
        using (update)
        {
            CheckAssignment(assignment);
            if (_checksums.TryGetValue(input.UpdateId, out var known))
            {
                return known == input.Checksum
                    ? new AggregatorAddResult(_aggregate.Count, AlreadyIncluded: true, _incarnation)
                    : throw new UpdateRejectedException(RejectionReason.DuplicateUpdateId, $"update id {input.UpdateId} was already used for other bytes in this round");
            }

            if (input.Retain)
            {
                _aggregate.Retained.Add(update.Share());
            }
            else if (_assignment!.Lazy)
            {
                _lazy.Add((update.Share(), input.Scale));
            }
            else if ((_aggregate.Sum ??= NewSum(update.Length)).Length != update.Length)
            {
                throw new UpdateRejectedException(RejectionReason.WrongShape, $"update {input.UpdateId} has {update.Length:N0} bytes; this aggregate sums {_aggregate.Sum.Length:N0}");
            }

            // Held by the aggregate from here on (its reference is this aggregator's), folded in by the next pass.
            _checksums[input.UpdateId] = input.Checksum;
            _aggregate.TotalWeight += input.Weight;
            _aggregate.TotalStaleness += input.Staleness;
            _aggregate.Count++;
            _aggregate.UpdateIds.Add(input.UpdateId);
            var result = new AggregatorAddResult(_aggregate.Count, AlreadyIncluded: false, _incarnation);
            if (input.Retain || _assignment!.Lazy)
            {
                return result;
            }

            var pending = new Pending(update.Share(), input.Scale);
            _pending.Add(pending);
            _folding ??= FoldPendingAsync();
            await pending.Folded.Task;
            return result;
        }
    }

    /// <summary>
    /// Folds what is pending, all of it in one pass over the sum, until nothing is: updates that arrive together cost
    /// one read and write of the sum, not one each.
    /// </summary>
    private async Task FoldPendingAsync()
    {
        try
        {
            // The Adds queued behind the first join its pass.
            await Task.Yield();
            while (_pending.Count > 0)
            {
                var batch = _pending.ToList();
                _pending.Clear();
                try
                {
                    var started = Stopwatch.GetTimestamp();
                    AggregationKernels.AccumulateMany(
                        _aggregate.Sum!.AsSpan<float>(),
                        [.. batch.Select(p => (ReadOnlyMemory<float>)p.Update.AsMemory<float>())],
                        [.. batch.Select(p => (float)p.Scale)]);
                    _aggregate.AccumulateSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
                    _aggregate.AccumulatedBytes += batch.Sum(p => (long)p.Update.Length);
                    batch.ForEach(p => p.Folded.TrySetResult());
                }
                catch (Exception error)
                {
                    batch.ForEach(p => p.Folded.TrySetException(error));
                }
                finally
                {
                    batch.ForEach(p => p.Update.Dispose());
                }
            }
        }
        finally
        {
            _folding = null;
        }
    }

    public async Task<PartialAggregate> Finish(string assignment)
    {
        CheckAssignment(assignment);
        _finished = true;
        var own = _assignment!;

        // The children finish (their last folds, their own children) while this one finishes its own.
        var children = own.Children.IsEmpty
            ? null
            : Task.WhenAll(own.Children.Select(child => GrainFactory.GetGrain<IAggregatorGrain>(child).Finish(assignment)));
        if (_folding is { } folding)
        {
            // Updates accepted before the close are in it: their pass finishes first.
            await folding;
        }

        // Lazy: everything at the close, in one pass over the sum as the eager passes fold what is pending.
        if (_lazy.Count > 0)
        {
            var started = Stopwatch.GetTimestamp();
            AggregationKernels.AccumulateMany(
                (_aggregate.Sum ??= NewSum(_lazy[0].Update.Length)).AsSpan<float>(),
                [.. _lazy.Select(l => (ReadOnlyMemory<float>)l.Update.AsMemory<float>())],
                [.. _lazy.Select(l => (float)l.Scale)]);
            _aggregate.AccumulateSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
            _aggregate.AccumulatedBytes += _lazy.Sum(l => (long)l.Update.Length);
            _lazy.ForEach(l => l.Update.Dispose());
            _lazy.Clear();
        }

        var result = _aggregate;
        _aggregate = new PartialAggregate();
        result.Sources = result.Sources.Add(new AggregateSource(this.GetPrimaryKeyString(), _incarnation, result.Count));
        try
        {
            if (children is not null)
            {
                var partials = await children;
                foreach (var partial in partials)
                {
                    Combine(result, partial);
                }
            }
        }
        catch
        {
            result.Dispose();
            throw;
        }

        LogFinished(logger, this.GetPrimaryKeyString(), own.Id, result.Count);

        // The buffers go to the caller with the answer; this activation keeps nothing but stays warm for a while.
        foreach (var sum in result.Sums)
        {
            sum.MoveToCaller();
        }

        foreach (var retained in result.Retained)
        {
            retained.MoveToCaller();
        }

        StayWarm(own.WarmWindow);
        return result;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        Reset();
        return Task.CompletedTask;
    }

    /// <summary>Takes a child's partial aggregate into this one (sums add: the hierarchy gives the flat result).</summary>
    private void Combine(PartialAggregate into, PartialAggregate child)
    {
        using (child)
        {
            // The child's sums move up unadded (their references move, nothing is copied or summed here): the job adds
            // the whole tree's in the one pass of its server step.
            if (child.Sum is { } childSum)
            {
                if (into.Sum is null)
                {
                    into.Sum = childSum;
                }
                else
                {
                    into.PartSums.Add(childSum);
                }

                child.Sum = null;
            }

            into.PartSums.AddRange(child.PartSums);
            child.PartSums.Clear();

            into.TotalWeight += child.TotalWeight;
            into.TotalStaleness += child.TotalStaleness;
            into.Count += child.Count;
            into.UpdateIds.AddRange(child.UpdateIds);
            into.Retained.AddRange(child.Retained);
            child.Retained.Clear();
            into.Sources = into.Sources.AddRange(child.Sources);
            into.AccumulateSeconds += child.AccumulateSeconds;
            into.AccumulatedBytes += child.AccumulatedBytes;
        }
    }

    private void CheckAssignment(string assignment)
    {
        if (_assignment?.Id != assignment || _finished)
        {
            throw new UpdateRejectedException(RejectionReason.RoundClosed,
                $"aggregator {this.GetPrimaryKeyString()} does not serve round {assignment} (it {(_assignment is null ? "serves none" : _finished ? $"closed {_assignment.Id}" : $"serves {_assignment.Id}")})");
        }
    }

    private void StayWarm(TimeSpan window)
    {
        if (window <= TimeSpan.Zero)
        {
            DeactivateOnIdle();
            return;
        }

        _coolDown?.Dispose();
        _coolDown = RegisterGrainTimer(
            _ =>
            {
                if (_finished)
                {
                    DeactivateOnIdle();
                }

                return Task.CompletedTask;
            },
            new GrainTimerCreationOptions(window, Timeout.InfiniteTimeSpan));
        DelayDeactivation(window);
    }

    private void Reset()
    {
        foreach (var pending in _pending)
        {
            pending.Update.Dispose();
            pending.Folded.TrySetException(new UpdateRejectedException(RejectionReason.RoundClosed, "the aggregator was reassigned before this update was folded in"));
        }

        _pending.Clear();
        _aggregate.Dispose();
        _aggregate = new PartialAggregate();
        foreach (var (update, _) in _lazy)
        {
            update.Dispose();
        }

        _lazy.Clear();
        _checksums.Clear();
    }

    private sealed class Pending(SharedBuffer update, double scale)
    {
        public SharedBuffer Update { get; } = update;

        public double Scale { get; } = scale;

        public TaskCompletionSource Folded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private SharedBuffer NewSum(int bytes)
    {
        var sum = pool.Rent(bytes);
        sum.Prefault(forWrite: true);
        sum.Span.Clear();
        return sum;
    }

    [LoggerMessage(EventId = 7102, Level = LogLevel.Debug, Message = "Aggregator {Aggregator} assigned to round {Assignment} as {Role} (warm: {Warm})")]
    private static partial void LogAssigned(ILogger logger, string aggregator, string assignment, AggregatorRole role, bool warm);

    [LoggerMessage(EventId = 7101, Level = LogLevel.Debug, Message = "Aggregator {Aggregator} closed round {Assignment} with {Count} updates")]
    private static partial void LogFinished(ILogger logger, string aggregator, string assignment, int count);
}
