using System.Buffers;
using Orleans.LIFL.Concurrency;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// Tarragon's KV checkpoint store for one request (keyed by its request id), on another silo than its session. A
/// session appends every new position's KV segment asynchronously, in batches, never waiting for the answer before it
/// decodes on; the store commits the contiguous prefix it holds and numbers its commits. A session that resumes
/// elsewhere reads the committed prefix back.
/// </summary>
public interface IKvCheckpointStoreGrain : IGrainWithStringKey
{
    /// <summary>Starts (or restarts, for a different request) the checkpoint of <paramref name="request"/>.</summary>
    Task Begin(GenerationRequest request, int layers, int modelDim);

    /// <summary>
    /// Adds segments (in position order) and returns the position committed through (−1: none). Positions already
    /// committed are skipped (a resend); a gap after the committed prefix is refused, and the answer says where to
    /// resume from.
    /// </summary>
    Task<int> Append(string requestId, KvSegment[] segments);

    /// <summary>The committed prefix, for a session resuming elsewhere.</summary>
    [ReadOnly]
    Task<KvCheckpoint> Restore(string requestId);

    [ReadOnly]
    Task<KvStoreStatus> Status();

    /// <summary>The request finished and its client has everything: forget it.</summary>
    Task Drop(string requestId);
}

[AwayFromCallerPlacement]
public sealed class KvCheckpointStoreGrain : Grain, IKvCheckpointStoreGrain
{
    /// <summary>Commit records kept for <see cref="Status"/> (the newest ones).</summary>
    private const int CommitsKept = 4096;

    /// <summary>
    /// Positions per storage block. Blocks are rented from the shared array pool and given back when the request is
    /// dropped: a request's KV takes no memory the next request cannot reuse, and no array grows (a growing array of a
    /// long request soon lands on the large-object heap, and a stream of them, on a silo that also serves experts, keeps
    /// its collector doing full collections).
    /// </summary>
    private const int BlockPositions = 16;

    private readonly List<KvCommit> _commits = [];

    // The committed positions' keys and values, BlockPositions positions (position-major, _width floats each) a block.
    private readonly List<float[]> _keyBlocks = [];
    private readonly List<float[]> _valueBlocks = [];
    private readonly List<int> _outputs = [];
    private GenerationRequest? _request;
    private int _width;
    private long _sequence;
    private long _bytes;

    private int Count => _outputs.Count;

    public Task Begin(GenerationRequest request, int layers, int modelDim)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.RequestId != GrainId.Key)
        {
            throw new ArgumentException($"Request {request.RequestId} was sent to the checkpoint store of {GrainId.Key}.", nameof(request));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(modelDim, 1);
        if (_request is not null && _request.SameGeneration(request) && _width == layers * modelDim)
        {
            return Task.CompletedTask;
        }

        _request = request;
        _width = layers * modelDim;
        Clear();
        return Task.CompletedTask;
    }

    public Task<int> Append(string requestId, KvSegment[] segments)
    {
        ArgumentNullException.ThrowIfNull(segments);
        if (_request is null || requestId != _request.RequestId)
        {
            // This store was lost (its silo died) or never begun: the session must begin again and resend.
            throw new KvCheckpointLostException($"The checkpoint store of {GrainId.Key} holds no checkpoint of request {requestId}; begin it again.");
        }

        var before = Count;
        foreach (var segment in segments)
        {
            if (segment.Position < Count)
            {
                continue;
            }

            if (segment.Position > Count)
            {
                break;
            }

            if (segment.Keys.Length != _width || segment.Values.Length != _width)
            {
                throw new ArgumentException(
                    $"KV segment {segment.Position} of {requestId} has {segment.Keys.Length} keys and {segment.Values.Length} values; a position holds {_width} of each.",
                    nameof(segments));
            }

            Store(segment);
        }

        if (Count > before)
        {
            _commits.Add(new KvCommit(++_sequence, Count - 1, DateTime.UtcNow));
            if (_commits.Count > CommitsKept)
            {
                _commits.RemoveRange(0, _commits.Count - CommitsKept);
            }
        }

        return Task.FromResult(Count - 1);
    }

    public Task<KvCheckpoint> Restore(string requestId) =>
        Task.FromResult(_request?.RequestId == requestId
            ? new KvCheckpoint(_request, [.. Enumerable.Range(0, Count).Select(Segment)], _commits.Count > 0 ? _commits[^1] : null)
            : new KvCheckpoint(null, [], null));

    public Task<KvStoreStatus> Status() =>
        Task.FromResult(new KvStoreStatus(GrainId.Key, GrainContext.Silo.ToString(), Count - 1, [.. _commits], _bytes));

    public Task Drop(string requestId)
    {
        if (_request?.RequestId == requestId)
        {
            _request = null;
            Clear();
            DeactivateOnIdle();
        }

        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        Clear();
        return Task.CompletedTask;
    }

    /// <summary>Appends the next position (the caller checked that it is the next, and its widths).</summary>
    private void Store(KvSegment segment)
    {
        var (block, offset) = Math.DivRem(Count, BlockPositions);
        if (block == _keyBlocks.Count)
        {
            _keyBlocks.Add(ArrayPool<float>.Shared.Rent(BlockPositions * _width));
            _valueBlocks.Add(ArrayPool<float>.Shared.Rent(BlockPositions * _width));
        }

        segment.Keys.CopyTo(_keyBlocks[block].AsSpan(offset * _width, _width));
        segment.Values.CopyTo(_valueBlocks[block].AsSpan(offset * _width, _width));
        _outputs.Add(segment.Output);
        _bytes += 8L * _width;
    }

    private KvSegment Segment(int position)
    {
        var (block, offset) = Math.DivRem(position, BlockPositions);
        return new(position, _keyBlocks[block].AsSpan(offset * _width, _width).ToArray(), _valueBlocks[block].AsSpan(offset * _width, _width).ToArray(), _outputs[position]);
    }

    /// <summary>Forgets every position and gives the blocks back to the pool.</summary>
    private void Clear()
    {
        foreach (var block in _keyBlocks.Concat(_valueBlocks))
        {
            ArrayPool<float>.Shared.Return(block);
        }

        _keyBlocks.Clear();
        _valueBlocks.Clear();
        _outputs.Clear();
        _bytes = 0;
    }
}

/// <summary>A checkpoint store has nothing for the request (it was lost with its silo): begin the checkpoint again.</summary>
public sealed class KvCheckpointLostException : Exception
{
    public KvCheckpointLostException(string message) : base(message)
    {
    }
}
