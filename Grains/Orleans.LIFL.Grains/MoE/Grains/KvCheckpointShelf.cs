namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// The requests a checkpoint store holds, by request id. A request is dropped when its client has every token; one
/// whose sessions stopped touching it (its client went away as well as its session's silo) is dropped once it has been
/// left alone for <see cref="StaleAfter"/>, so that a store serving a silo's sessions for days does not keep them all.
/// </summary>
internal sealed class KvCheckpointShelf(TimeProvider time) : IDisposable
{
    /// <summary>How long a request may go untouched before it is dropped: the grain collector's default idle time.</summary>
    public static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(15);

    /// <summary>How often the shelf looks for stale requests (on a session's begin).</summary>
    private static readonly TimeSpan SweepPeriod = TimeSpan.FromMinutes(1);

    private readonly Dictionary<string, KvRequestCheckpoint> _requests = new(StringComparer.Ordinal);
    private long _sweptAt = time.GetTimestamp();

    public int Count => _requests.Count;

    /// <summary>
    /// Starts the checkpoint of <paramref name="request"/> (or keeps it, when it is the same generation of the same shape);
    /// another generation under the same request id replaces it.
    /// </summary>
    public void Begin(GenerationRequest request, int width)
    {
        var now = time.GetTimestamp();
        if (time.GetElapsedTime(_sweptAt, now) >= SweepPeriod)
        {
            DropStale(now);
        }

        if (_requests.TryGetValue(request.RequestId, out var held) && held.Request.SameGeneration(request) && held.Width == width)
        {
            held.TouchedAt = now;
            return;
        }

        Drop(request.RequestId);
        _requests[request.RequestId] = new KvRequestCheckpoint(request, width, now);
    }

    /// <summary>The request's checkpoint, touched; null when the shelf does not hold it.</summary>
    public KvRequestCheckpoint? Touch(string requestId)
    {
        if (!_requests.TryGetValue(requestId, out var held))
        {
            return null;
        }

        held.TouchedAt = time.GetTimestamp();
        return held;
    }

    /// <summary>The request's checkpoint as it is, not touched (for status reads); null when the shelf does not hold it.</summary>
    public KvRequestCheckpoint? Find(string requestId) => _requests.GetValueOrDefault(requestId);

    public bool Drop(string requestId)
    {
        if (!_requests.Remove(requestId, out var held))
        {
            return false;
        }

        held.Dispose();
        return true;
    }

    /// <summary>Drops every request untouched for <see cref="StaleAfter"/> at <paramref name="now"/>; returns their ids.</summary>
    public IReadOnlyList<string> DropStale(long now)
    {
        _sweptAt = now;
        var stale = _requests.Where(r => time.GetElapsedTime(r.Value.TouchedAt, now) >= StaleAfter).Select(r => r.Key).ToList();
        foreach (var requestId in stale)
        {
            Drop(requestId);
        }

        return stale;
    }

    public void Dispose()
    {
        foreach (var held in _requests.Values)
        {
            held.Dispose();
        }

        _requests.Clear();
    }
}
