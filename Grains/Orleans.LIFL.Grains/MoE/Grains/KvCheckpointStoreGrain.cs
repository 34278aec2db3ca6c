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

    /// <summary>Positions stored before the store's arrays first grow.</summary>
    private const int InitialPositions = 64;

    private readonly List<KvCommit> _commits = [];

    // The committed positions' keys and values back to back (position-major, _width floats each), and their outputs:
    // a few arrays per request however long it runs, not three objects per position for the GC to trace and promote on
    // this silo, which also serves experts.
    private float[] _keys = [];
    private float[] _values = [];
    private int[] _outputs = [];
    private int _count;
    private GenerationRequest? _request;
    private int _width;
    private long _sequence;
    private long _bytes;

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

        var before = _count;
        foreach (var segment in segments)
        {
            if (segment.Position < _count)
            {
                continue;
            }

            if (segment.Position > _count)
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

        if (_count > before)
        {
            _commits.Add(new KvCommit(++_sequence, _count - 1, DateTime.UtcNow));
            if (_commits.Count > CommitsKept)
            {
                _commits.RemoveRange(0, _commits.Count - CommitsKept);
            }
        }

        return Task.FromResult(_count - 1);
    }

    public Task<KvCheckpoint> Restore(string requestId) =>
        Task.FromResult(_request?.RequestId == requestId
            ? new KvCheckpoint(_request, [.. Enumerable.Range(0, _count).Select(Segment)], _commits.Count > 0 ? _commits[^1] : null)
            : new KvCheckpoint(null, [], null));

    public Task<KvStoreStatus> Status() =>
        Task.FromResult(new KvStoreStatus(GrainId.Key, GrainContext.Silo.ToString(), _count - 1, [.. _commits], _bytes));

    public Task Drop(string requestId)
    {
        if (_request?.RequestId == requestId)
        {
            _request = null;
            Clear();
            (_keys, _values, _outputs) = ([], [], []);
            DeactivateOnIdle();
        }

        return Task.CompletedTask;
    }

    /// <summary>Appends the next position (the caller checked that it is the next, and its widths).</summary>
    private void Store(KvSegment segment)
    {
        if (_count == _outputs.Length)
        {
            // Doubling: each position is copied about once more, in all, however long the request runs.
            var positions = Math.Max(InitialPositions, 2 * _outputs.Length);
            Array.Resize(ref _keys, positions * _width);
            Array.Resize(ref _values, positions * _width);
            Array.Resize(ref _outputs, positions);
        }

        segment.Keys.CopyTo(_keys.AsSpan(_count * _width, _width));
        segment.Values.CopyTo(_values.AsSpan(_count * _width, _width));
        _outputs[_count] = segment.Output;
        _count++;
        _bytes += 8L * _width;
    }

    private KvSegment Segment(int position) =>
        new(position, _keys.AsSpan(position * _width, _width).ToArray(), _values.AsSpan(position * _width, _width).ToArray(), _outputs[position]);

    private void Clear()
    {
        if (_keys.Length != _outputs.Length * _width)
        {
            // Made for another width: they are made again at the next append.
            (_keys, _values, _outputs) = ([], [], []);
        }

        _count = 0;
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
