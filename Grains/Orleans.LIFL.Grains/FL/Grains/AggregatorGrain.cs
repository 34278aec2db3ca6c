using Microsoft.Extensions.Logging;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL.Algorithms;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL;

/// <summary>
/// Accumulates one round's updates (in one epoch of the round) as they arrive: each update is folded into the
/// running weighted sum in one vectorized pass over its shared buffer and then let go, so the aggregator holds one
/// model-sized buffer however many clients take part. Key: "job/round/epoch".
/// </summary>
public interface IAggregatorGrain : IGrainWithStringKey
{
    /// <summary>Folds the update in (or keeps it, for algorithms that need every update); says how many the aggregate has.</summary>
    Task<AggregatorAddResult> Add(AggregationInput input, SharedBuffer update);

    /// <summary>Closes the aggregate and hands it up; later updates are refused (round closed).</summary>
    Task<PartialAggregate> Finish();
}

/// <param name="Count">Updates in the aggregate now.</param>
/// <param name="AlreadyIncluded">The same update (id and bytes) was added before: it counts once.</param>
/// <param name="Incarnation">The aggregator's activation: another value under the same key means the earlier one died with what it held.</param>
[GenerateSerializer]
[Immutable]
public sealed record AggregatorAddResult([property: Id(0)] int Count, [property: Id(1)] bool AlreadyIncluded, [property: Id(2)] Guid Incarnation);

public sealed partial class AggregatorGrain(SharedBufferPool pool, ILogger<AggregatorGrain> logger) : Grain, IAggregatorGrain
{
    private readonly Dictionary<string, ulong> _checksums = new(StringComparer.Ordinal);
    // A virtual actor whose silo died comes back, empty, at the next call: the job tells the two apart by this.
    private readonly Guid _incarnation = Guid.NewGuid();
    private PartialAggregate _aggregate = new();
    private bool _finished;

    public Task<AggregatorAddResult> Add(AggregationInput input, SharedBuffer update)
    {
        using (update)
        {
            if (_finished)
            {
                throw new UpdateRejectedException(RejectionReason.RoundClosed, $"the aggregate {this.GetPrimaryKeyString()} is closed; update {input.UpdateId} came too late");
            }

            if (_checksums.TryGetValue(input.UpdateId, out var known))
            {
                return known == input.Checksum
                    ? Task.FromResult(new AggregatorAddResult(_aggregate.Count, AlreadyIncluded: true, _incarnation))
                    : throw new UpdateRejectedException(RejectionReason.DuplicateUpdateId, $"update id {input.UpdateId} was already used for other bytes in this round");
            }

            if (input.Retain)
            {
                _aggregate.Retained.Add(update.Share());
            }
            else
            {
                var sum = _aggregate.Sum ??= NewSum(update.Length);
                if (sum.Length != update.Length)
                {
                    throw new UpdateRejectedException(RejectionReason.WrongShape, $"update {input.UpdateId} has {update.Length:N0} bytes; this aggregate sums {sum.Length:N0}");
                }

                AggregationKernels.Accumulate(sum.AsSpan<float>(), update.AsSpan<float>(), (float)input.Scale);
            }

            _checksums[input.UpdateId] = input.Checksum;
            _aggregate.TotalWeight += input.Weight;
            _aggregate.TotalStaleness += input.Staleness;
            _aggregate.Count++;
            _aggregate.UpdateIds.Add(input.UpdateId);
            return Task.FromResult(new AggregatorAddResult(_aggregate.Count, AlreadyIncluded: false, _incarnation));
        }
    }

    public Task<PartialAggregate> Finish()
    {
        _finished = true;
        LogFinished(logger, this.GetPrimaryKeyString(), _aggregate.Count);
        var result = _aggregate;
        result.Incarnation = _incarnation;
        _aggregate = new PartialAggregate();

        // The buffers go to the caller with the answer; this activation has nothing left to keep.
        result.Sum?.MoveToCaller();
        foreach (var retained in result.Retained)
        {
            retained.MoveToCaller();
        }

        DeactivateOnIdle();
        return Task.FromResult(result);
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _aggregate.Dispose();
        return Task.CompletedTask;
    }

    private SharedBuffer NewSum(int bytes)
    {
        var sum = pool.Rent(bytes);
        sum.Span.Clear();
        return sum;
    }

    [LoggerMessage(EventId = 7101, Level = LogLevel.Debug, Message = "Aggregate {Aggregator} closed with {Count} updates")]
    private static partial void LogFinished(ILogger logger, string aggregator, int count);
}
