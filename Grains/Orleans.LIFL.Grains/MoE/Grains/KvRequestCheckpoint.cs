using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// One request's committed KV prefix in a checkpoint store: the contiguous positions received so far, the commit records
/// numbering each append that extended it, and when a session last touched it.
/// </summary>
/// <remarks>
/// The positions stay in the shared-pool buffers the sessions sent them in (one per append that extended the prefix):
/// the store copies nothing on the way in, keeps no managed arrays (a long request's growing array would land on the
/// large-object heap of a silo that also serves experts), and gives the buffers back to the pool when the request is
/// dropped. The bytes outlive the session's process: the store holds its own reference.
/// </remarks>
internal sealed class KvRequestCheckpoint : IDisposable
{
    /// <summary>Commit records kept for <see cref="Status"/> (the newest ones).</summary>
    private const int CommitsKept = 4096;

    private readonly List<KvCommit> _commits = [];

    // The appends that extended the prefix, in position order; the first of each that counts is the one after the previous's last.
    private readonly List<(KvSegments Batch, int First)> _batches = [];
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

    public long BytesStored => KvSegments.BytesPerPosition(Width) * _outputs.Count;

    public KvCommit? LastCommit => _commits.Count > 0 ? _commits[^1] : null;

    public IReadOnlyList<KvCommit> Commits => _commits;

    /// <summary>
    /// Takes over <paramref name="batch"/> (this checkpoint keeps it, or disposes it at once when it adds nothing): its
    /// positions past the committed prefix extend it when the batch starts within it or right after it; a batch that
    /// starts later leaves a gap and is not taken. Returns the position committed through.
    /// </summary>
    public int Append(KvSegments batch)
    {
        var kept = false;
        try
        {
            if (batch.Problem(Width) is { } problem)
            {
                throw new ArgumentException($"The KV batch from position {batch.From} of {Request.RequestId} is malformed: {problem}.", nameof(batch));
            }

            var first = _outputs.Count;
            if (batch.From <= first && batch.From + batch.Count > first)
            {
                for (var index = first - batch.From; index < batch.Count; index++)
                {
                    _outputs.Add(batch.Outputs[index]);
                }

                _batches.Add((batch, first));
                kept = true;
                _commits.Add(new KvCommit(++_sequence, CommittedThrough, DateTime.UtcNow));
                if (_commits.Count > CommitsKept)
                {
                    _commits.RemoveRange(0, _commits.Count - CommitsKept);
                }
            }

            return CommittedThrough;
        }
        finally
        {
            if (!kept)
            {
                batch.Dispose();
            }
        }
    }

    /// <summary>The committed prefix in one new buffer of <paramref name="pool"/> (none committed: no segments).</summary>
    public KvCheckpoint Checkpoint(SharedBufferPool pool)
    {
        if (_outputs.Count == 0)
        {
            return new KvCheckpoint(Request, null, LastCommit);
        }

        var all = KvSegments.Rent(pool, 0, _outputs.Count, Width);
        _outputs.CopyTo(all.Outputs);
        var into = all.Bytes.Span;
        var perPosition = (int)KvSegments.BytesPerPosition(Width);
        var next = 0;
        foreach (var (batch, first) in _batches)
        {
            var end = batch.From + batch.Count;
            batch.Bytes.Span[((first - batch.From) * perPosition)..(batch.Count * perPosition)].CopyTo(into[(next * perPosition)..]);
            next = end;
        }

        return new KvCheckpoint(Request, all, LastCommit);
    }

    /// <summary>Gives the buffers back to the pool; the checkpoint holds nothing afterwards.</summary>
    public void Dispose()
    {
        foreach (var (batch, _) in _batches)
        {
            batch.Dispose();
        }

        _batches.Clear();
        _outputs.Clear();
    }
}
