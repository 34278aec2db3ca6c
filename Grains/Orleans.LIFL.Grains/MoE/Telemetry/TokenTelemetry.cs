namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// A deployment's side of the token telemetry: folds its sessions' per-second reports (and the gaps clients saw while a
/// request moved to a new incarnation) into a view per request, a second-by-second series over all sessions, and the
/// stall around each failure event. Plain memory, bounded: the newest <c>keepSeconds</c> seconds and
/// <c>keepRequests</c> requests.
/// </summary>
public sealed class TokenTelemetry(TimeProvider time, int keepSeconds = 300, int keepRequests = 100)
{
    /// <summary>Gaps kept per request for its percentiles (the newest).</summary>
    private const int GapsPerRequest = 2048;

    /// <summary>Seconds older than this (behind the newest report) keep only their summary, not every gap.</summary>
    private const int OpenSeconds = 3;

    /// <summary>The newest gaps a request's tokens per second is taken from.</summary>
    private const int RateGaps = 256;

    /// <summary>How far before a failure event's report, and after its end, a gap counts as its stall.</summary>
    private static readonly TimeSpan StallLead = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan StallLag = TimeSpan.FromSeconds(1);

    private readonly Dictionary<string, Request> _requests = new(StringComparer.Ordinal);
    private readonly SortedDictionary<long, Second> _seconds = [];
    private readonly List<(DateTime End, SessionResume Resume)> _resumes = [];

    /// <summary>Takes one session's report; a report of an incarnation older than the request's newest is ignored.</summary>
    public void Record(SessionTokenReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var (requestId, incarnation) = InferenceSessions.Parse(report.Session);
        if (report.GapsMs is null || report.Silo is null || report.State is null)
        {
            throw new ArgumentException($"The token report of {report.Session} lacks its gaps, silo or state.", nameof(report));
        }

        var bad = Array.FindIndex(report.GapsMs, g => !float.IsFinite(g) || g < 0);
        if (report.Tokens < 0 || report.TotalTokens < 0 || report.GapsMs.Length > report.Tokens || bad >= 0)
        {
            throw new ArgumentException(
                $"The token report of {report.Session} is inconsistent: {report.Tokens} tokens, {report.GapsMs.Length} gaps"
                + (bad >= 0 ? $", gap {bad} is {report.GapsMs[bad]} ms" : "") + ".",
                nameof(report));
        }

        var request = RequestOf(requestId, report.OpenedUtc);
        if (incarnation < request.Incarnation)
        {
            return;
        }

        request.Take(incarnation, report, time.GetUtcNow().UtcDateTime);
        if (report.Tokens > 0)
        {
            if (!_seconds.TryGetValue(report.Second, out var second))
            {
                second = _seconds[report.Second] = new Second();
            }

            second.Add(report);
            Seal(report.Second);
        }
    }

    /// <summary>A client waited <see cref="SessionResume.GapMs"/> between two tokens because its request moved to a new incarnation.</summary>
    public void RecordResume(SessionResume resume)
    {
        ArgumentNullException.ThrowIfNull(resume);
        var (requestId, incarnation) = InferenceSessions.Parse(resume.Session);
        if (resume.Problem() is { } problem)
        {
            throw new ArgumentException($"The resume of {resume.Session} is inconsistent: {problem}.", nameof(resume));
        }

        var gapMs = resume.GapMs;
        var now = time.GetUtcNow().UtcDateTime;
        _resumes.Add((now, resume));
        if (_resumes.Count > keepRequests)
        {
            _resumes.RemoveAt(0);
        }

        // The old incarnation may have died before its first report: the request is known from here then.
        var request = RequestOf(requestId, now);
        if (incarnation >= request.Incarnation)
        {
            request.MaxGapMs = Math.Max(request.MaxGapMs, gapMs);
        }

        var key = new DateTimeOffset(now).ToUnixTimeSeconds();
        if (!_seconds.TryGetValue(key, out var second))
        {
            second = _seconds[key] = new Second();
        }

        second.AddGap(gapMs, now);
    }

    /// <summary>The requests (newest first), the series (oldest first) and the stall of each of <paramref name="events"/>.</summary>
    public MoeTelemetry Snapshot(IReadOnlyList<MoeFailureEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var sessions = _requests.Values.OrderByDescending(r => r.Opened).Select(r => r.View()).ToArray();
        var series = _seconds.Select(s => s.Value.View(s.Key)).ToArray();
        return new MoeTelemetry(sessions, series, [.. events.Select(StallAround)]);
    }

    /// <summary>
    /// The longest gap between tokens (a session's or a client's) overlapping the failure: from <see cref="StallLead"/>
    /// before it was reported (its time less its recovery time) to <see cref="StallLag"/> after it was handled; and the
    /// longest client wait for a new incarnation overlapping it, with its phases, whether or not it was the longest gap
    /// (on a loaded machine a session can also pause longer than the move took, and the move is still what to explain).
    /// </summary>
    private MoeEventStall StallAround(MoeFailureEvent failure)
    {
        var from = failure.AtUtc - failure.RecoveryTime - StallLead;
        var until = failure.AtUtc + StallLag;
        bool Overlaps(DateTime end, double gapMs) => end >= from && end.AddMilliseconds(-gapMs) <= until;
        var gaps = _seconds.Values.Where(s => s.MaxGapMs > 0 && Overlaps(s.MaxGapEnd, s.MaxGapMs)).Select(s => s.MaxGapMs).ToList();
        var resume = _resumes.Where(r => Overlaps(r.End, r.Resume.GapMs)).Select(r => r.Resume).MaxBy(r => r.GapMs);
        if (resume is not null)
        {
            gaps.Add(resume.GapMs);
        }

        double? stall = gaps.Count > 0 ? Math.Round(gaps.Max(), 1) : null;
        return new MoeEventStall(failure.AtUtc, failure.Silo, failure.Kind, stall, resume);
    }

    private Request RequestOf(string requestId, DateTime opened)
    {
        if (!_requests.TryGetValue(requestId, out var request))
        {
            request = _requests[requestId] = new Request(requestId, opened);
            Trim();
        }

        return request;
    }

    private void Seal(long newest)
    {
        foreach (var (key, second) in _seconds)
        {
            if (key >= newest - OpenSeconds)
            {
                break;
            }

            second.Seal();
        }

        while (_seconds.Count > 0 && _seconds.First().Key < newest - keepSeconds)
        {
            _seconds.Remove(_seconds.First().Key);
        }
    }

    private void Trim()
    {
        while (_requests.Count > keepRequests)
        {
            var oldest = _requests.Values.OrderBy(r => r.State == "running" ? 1 : 0).ThenBy(r => r.Last).First();
            _requests.Remove(oldest.Id);
        }
    }

    /// <summary>Nearest-rank percentile <paramref name="p"/> (0-100) of <paramref name="values"/>; NaN when there are none.</summary>
    public static double Percentile(IEnumerable<double> values, double p)
    {
        ArgumentNullException.ThrowIfNull(values);
        return Ranked(values.Order().ToList(), p);
    }

    private static double Round(double value) => double.IsNaN(value) ? 0 : Math.Round(value, 2);

    /// <summary>The median and 99th percentile of <paramref name="gaps"/> (ms, rounded; 0 for none), sorting them once.</summary>
    private static (double P50, double P99) Quantiles(IEnumerable<float> gaps)
    {
        var sorted = gaps.Select(g => (double)g).Order().ToList();
        return (Round(Ranked(sorted, 50)), Round(Ranked(sorted, 99)));
    }

    private static double Ranked(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[(int)Math.Clamp(Math.Ceiling(p / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];

    private sealed class Request(string id, DateTime opened)
    {
        private readonly Queue<float> _gaps = new();
        private string _silo = "";
        private int _tokens;
        private int _maxTokens;
        private long _replays;

        public string Id => id;

        public DateTime Opened { get; private set; } = opened;

        public DateTime Last { get; private set; } = opened;

        public int Incarnation { get; private set; }

        public string State { get; private set; } = "running";

        public double MaxGapMs { get; set; }

        public void Take(int incarnation, SessionTokenReport report, DateTime now)
        {
            Incarnation = incarnation;
            (_silo, State, _tokens, _maxTokens, _replays, Last) = (report.Silo, report.State, report.TotalTokens, report.MaxTokens, report.Replays, now);
            Opened = Opened < report.OpenedUtc ? Opened : report.OpenedUtc;
            foreach (var gap in report.GapsMs)
            {
                _gaps.Enqueue(gap);
                MaxGapMs = Math.Max(MaxGapMs, gap);
                if (_gaps.Count > GapsPerRequest)
                {
                    _gaps.Dequeue();
                }
            }
        }

        public MoeSessionView View()
        {
            // Tokens per second from the mean time between its newest tokens (a short request has no whole second to count in).
            var mean = _gaps.Count == 0 ? 0 : _gaps.Skip(Math.Max(0, _gaps.Count - RateGaps)).Average();
            var rate = mean > 0 ? 1000 / mean : 0;
            var (p50, p99) = Quantiles(_gaps);
            return new MoeSessionView(
                id, Incarnation, _silo, State, _tokens, _maxTokens, Math.Round(rate, 1), p50, p99, Math.Round(MaxGapMs, 1),
                _replays, Opened, Last);
        }
    }

    private sealed class Second
    {
        private List<float>? _gaps = [];
        private double _p50;
        private double _p99;

        public int Tokens { get; private set; }

        public double MaxGapMs { get; private set; }

        public DateTime MaxGapEnd { get; private set; }

        public void Add(SessionTokenReport report)
        {
            Tokens += report.Tokens;
            _gaps?.AddRange(report.GapsMs);
            var max = report.GapsMs.Length > 0 ? report.GapsMs.Max() : 0;
            if (max > MaxGapMs)
            {
                (MaxGapMs, MaxGapEnd) = (max, report.MaxGapEndUtc);
            }
        }

        public void AddGap(double gapMs, DateTime end)
        {
            if (gapMs > MaxGapMs)
            {
                (MaxGapMs, MaxGapEnd) = (gapMs, end);
            }
        }

        /// <summary>Keeps the percentiles and drops the gaps (a late report still adds its tokens and its longest gap).</summary>
        public void Seal()
        {
            if (_gaps is null)
            {
                return;
            }

            (_p50, _p99) = Quantiles(_gaps);
            _gaps = null;
        }

        public MoeSecond View(long second)
        {
            var (p50, p99) = _gaps is null ? (_p50, _p99) : Quantiles(_gaps);
            return new MoeSecond(second, Tokens, p50, p99, Math.Round(MaxGapMs, 2));
        }
    }
}
