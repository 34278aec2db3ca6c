using System.Buffers;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// One request's committed KV prefix in a checkpoint store: the contiguous positions received so far, the commit records
/// numbering each append that extended it, and when a session last touched it.
/// </summary>
internal sealed class KvRequestCheckpoint : IDisposable
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

    // The committed positions' keys and values, BlockPositions positions (position-major, Width floats each) a block.
    private readonly List<float[]> _keyBlocks = [];
    private readonly List<float[]> _valueBlocks = [];
    private readonly List<int> _outputs = [];
    private long _sequence;

    public KvRequestCheckpoint(GenerationRequest request, int width, long touchedAt)
    {
        Request = request;
        Width = width;
        TouchedAt = touchedAt;
    }

    public GenerationRequest Request { get; }

    /// <summary>Floats of keys (and as many of values) per position: layers × model dimension.</summary>
    public int Width { get; }

    /// <summary>When a session last began, appended to or restored this request (a <see cref="TimeProvider"/> timestamp).</summary>
    public long TouchedAt { get; set; }

    /// <summary>The last committed position (−1: none).</summary>
    public int CommittedThrough => _outputs.Count - 1;

    public long BytesStored => 8L * Width * _outputs.Count;

    public KvCommit? LastCommit => _commits.Count > 0 ? _commits[^1] : null;

    public IReadOnlyList<KvCommit> Commits => _commits;

    /// <summary>
    /// Adds the segments that extend the committed prefix, in order; skips those it holds already and stops at a gap.
    /// Returns the position committed through.
    /// </summary>
    public int Append(ReadOnlySpan<KvSegment> segments)
    {
        var before = _outputs.Count;
        foreach (var segment in segments)
        {
            if (segment.Position < _outputs.Count)
            {
                continue;
            }

            if (segment.Position > _outputs.Count)
            {
                break;
            }

            if (segment.Keys.Length != Width || segment.Values.Length != Width)
            {
                throw new ArgumentException(
                    $"KV segment {segment.Position} of {Request.RequestId} has {segment.Keys.Length} keys and {segment.Values.Length} values; a position holds {Width} of each.",
                    nameof(segments));
            }

            Store(segment);
        }

        if (_outputs.Count > before)
        {
            _commits.Add(new KvCommit(++_sequence, CommittedThrough, DateTime.UtcNow));
            if (_commits.Count > CommitsKept)
            {
                _commits.RemoveRange(0, _commits.Count - CommitsKept);
            }
        }

        return CommittedThrough;
    }

    public KvCheckpoint Checkpoint() => new(Request, [.. Enumerable.Range(0, _outputs.Count).Select(Segment)], LastCommit);

    /// <summary>Gives the blocks back to the pool; the checkpoint holds nothing afterwards.</summary>
    public void Dispose()
    {
        foreach (var block in _keyBlocks.Concat(_valueBlocks))
        {
            ArrayPool<float>.Shared.Return(block);
        }

        _keyBlocks.Clear();
        _valueBlocks.Clear();
        _outputs.Clear();
    }

    private void Store(KvSegment segment)
    {
        var (block, offset) = Math.DivRem(_outputs.Count, BlockPositions);
        if (block == _keyBlocks.Count)
        {
            _keyBlocks.Add(ArrayPool<float>.Shared.Rent(BlockPositions * Width));
            _valueBlocks.Add(ArrayPool<float>.Shared.Rent(BlockPositions * Width));
        }

        segment.Keys.CopyTo(_keyBlocks[block].AsSpan(offset * Width, Width));
        segment.Values.CopyTo(_valueBlocks[block].AsSpan(offset * Width, Width));
        _outputs.Add(segment.Output);
    }

    private KvSegment Segment(int position)
    {
        var (block, offset) = Math.DivRem(position, BlockPositions);
        return new(position, _keyBlocks[block].AsSpan(offset * Width, Width).ToArray(), _valueBlocks[block].AsSpan(offset * Width, Width).ToArray(), _outputs[position]);
    }
}
