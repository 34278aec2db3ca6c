namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// A session incarnation's side of the token telemetry: counts its generated tokens per wall-clock second and the gaps
/// between them, and hands out one <see cref="SessionTokenReport"/> per second (when the next second's first token comes,
/// or when the session stops). Gaps are measured with the monotonic clock; seconds are wall-clock seconds, so that the
/// deployment can add up sessions on different silos.
/// </summary>
public sealed class TokenMeter
{
    private readonly string _session;
    private readonly string _silo;
    private readonly int _maxTokens;
    private readonly TimeProvider _time;
    private readonly List<float> _gaps = [];
    private long _second = -1;
    private int _tokens;
    private long _last;
    private float _maxGap;
    private DateTime _maxGapEnd;

    public TokenMeter(string session, string silo, int maxTokens, TimeProvider time)
    {
        (_session, _silo, _maxTokens, _time) = (session, silo, maxTokens, time ?? throw new ArgumentNullException(nameof(time)));
        OpenedUtc = time.GetUtcNow().UtcDateTime;
    }

    public DateTime OpenedUtc { get; }

    /// <summary>A token was generated (the request now has <paramref name="totalTokens"/>); returns the finished second's report when this token begins a new one.</summary>
    public SessionTokenReport? Token(int totalTokens, long replays)
    {
        var now = _time.GetUtcNow();
        var stamp = _time.GetTimestamp();
        var second = now.ToUnixTimeSeconds();
        var finished = _second >= 0 && second != _second ? Take(totalTokens - 1, "running", replays) : null;
        _second = second;
        _tokens++;
        if (_last != 0)
        {
            var gap = (float)_time.GetElapsedTime(_last, stamp).TotalMilliseconds;
            _gaps.Add(gap);
            if (gap >= _maxGap)
            {
                (_maxGap, _maxGapEnd) = (gap, now.UtcDateTime);
            }
        }

        _last = stamp;
        return finished;
    }

    /// <summary>The report of the current second with the session's final state ("done", "failed", "aborted").</summary>
    public SessionTokenReport Final(int totalTokens, string state, long replays) => Take(totalTokens, state, replays);

    private SessionTokenReport Take(int totalTokens, string state, long replays)
    {
        var second = _second >= 0 ? _second : _time.GetUtcNow().ToUnixTimeSeconds();
        var report = new SessionTokenReport(
            _session, _silo, second, _tokens, totalTokens, _maxTokens, [.. _gaps], _maxGapEnd, OpenedUtc, state, replays);
        _gaps.Clear();
        (_tokens, _maxGap, _maxGapEnd) = (0, 0, default);
        return report;
    }
}
