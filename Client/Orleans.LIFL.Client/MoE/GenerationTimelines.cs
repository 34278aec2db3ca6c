using System.Diagnostics;
using Orleans.LIFL.Grains.MoE;
namespace Orleans.LIFL.Client.MoE;

/// <summary>When each token of each of several concurrent generations arrived (Stopwatch timestamps), and the figures taken from that: tokens/s, gaps, the stall around a failure.</summary>
public sealed class GenerationTimelines
{
    private readonly List<long>[] _arrivals;
    private readonly List<int>[] _tokens;

    public GenerationTimelines(int sessions)
    {
        _arrivals = [.. Enumerable.Range(0, sessions).Select(_ => new List<long>())];
        _tokens = [.. Enumerable.Range(0, sessions).Select(_ => new List<int>())];
    }

    public int Sessions => _arrivals.Length;

    /// <summary>The request id of each generation (set by <see cref="ConcurrentGenerations"/>).</summary>
    public string[] RequestIds { get; init; } = [];

    public IReadOnlyList<int> Tokens(int session) => _tokens[session];

    public int Count(int session)
    {
        lock (_arrivals[session])
        {
            return _arrivals[session].Count;
        }
    }

    public void Add(int session, GeneratedToken token) => Add(session, token, Stopwatch.GetTimestamp());

    /// <summary>Records <paramref name="token"/> as arrived at <paramref name="arrivedAt"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    internal void Add(int session, GeneratedToken token, long arrivedAt)
    {
        lock (_arrivals[session])
        {
            if (token.Index != _tokens[session].Count)
            {
                throw new InvalidOperationException($"Session {session} got token {token.Index} after {_tokens[session].Count} tokens: a gap or a repeat.");
            }

            _arrivals[session].Add(arrivedAt);
            _tokens[session].Add(token.Token);
        }
    }

    /// <summary>Tokens per second over all sessions, from the first token of any to the last of any.</summary>
    public double TokensPerSecond()
    {
        var first = _arrivals.Where(a => a.Count > 0).Min(a => a[0]);
        var last = _arrivals.Where(a => a.Count > 0).Max(a => a[^1]);
        var tokens = _arrivals.Sum(a => a.Count - 1);
        return tokens / Stopwatch.GetElapsedTime(first, last).TotalSeconds;
    }

    /// <summary>The gaps between consecutive tokens (ms) arriving in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public List<double> Gaps(long from = long.MinValue, long to = long.MaxValue) =>
        [.. _arrivals.SelectMany(a => a.Zip(a.Skip(1)).Where(p => p.Second >= from && p.Second < to).Select(p => Stopwatch.GetElapsedTime(p.First, p.Second).TotalMilliseconds))];

    /// <summary>
    /// The stall of a failure at <paramref name="failedAt"/>: the largest gap, in any session, that spans the failure or
    /// starts within <paramref name="window"/> after it (later gaps belong to the cluster's new steady state, not to the failure).
    /// </summary>
    public double StallAfter(long failedAt, TimeSpan window) =>
        StallGap(failedAt, window) is var (first, second) ? Stopwatch.GetElapsedTime(first, second).TotalMilliseconds : double.NaN;

    /// <summary>
    /// When the stall's gap (<see cref="StallAfter"/>) ended, in ms after <paramref name="failedAt"/>: the first token of
    /// the resumed streams when the failover itself was the longest wait, later when a hiccup after it was longer.
    /// </summary>
    public double StallEndedAfter(long failedAt, TimeSpan window) =>
        StallGap(failedAt, window) is var (_, second) ? Stopwatch.GetElapsedTime(failedAt, second).TotalMilliseconds : double.NaN;

    /// <summary>Per session, the gaps (ms) from the one spanning <paramref name="failedAt"/> to the last starting <paramref name="window"/> after it.</summary>
    public List<double[]> GapsAround(long failedAt, TimeSpan window) =>
        [.. GapsNear(failedAt, window).Select(gaps => gaps.Select(p => Math.Round(Stopwatch.GetElapsedTime(p.First, p.Second).TotalMilliseconds, 1)).ToArray())];

    /// <summary>The longest gap of any session among those <see cref="GapsNear"/> gives (the first of equals); null if there is none.</summary>
    private (long First, long Second)? StallGap(long failedAt, TimeSpan window) =>
        GapsNear(failedAt, window).SelectMany(gaps => gaps).Select(gap => ((long First, long Second)?)gap).MaxBy(gap => gap!.Value.Second - gap.Value.First);

    /// <summary>Per session, its gaps (arrival timestamps) that span <paramref name="failedAt"/> or start within <paramref name="window"/> after it.</summary>
    private IEnumerable<IEnumerable<(long First, long Second)>> GapsNear(long failedAt, TimeSpan window)
    {
        var until = failedAt + (long)(window.TotalSeconds * Stopwatch.Frequency);
        return _arrivals.Select(a => a.Zip(a.Skip(1)).Where(p => p.Second > failedAt && p.First <= until));
    }

    public static double Percentile(List<double> values, double p) => TokenTelemetry.Percentile(values, p);
}

/// <summary>Several generations at once on one deployment, with a failure injected once every one has a few tokens.</summary>
public static class ConcurrentGenerations
{
    /// <summary>
    /// Runs one generation per prompt at once (request ids in <see cref="GenerationTimelines.RequestIds"/>). Once every one has <paramref name="failAfterTokens"/> tokens,
    /// <paramref name="fail"/> runs (once); the returned timestamp is when it started (0: it did not run).
    /// </summary>
    public static async Task<(GenerationTimelines Timelines, long FailedAt)> RunAsync(
        MoeClient client, string deployment, IReadOnlyList<int[]> prompts, GenerationOptions options, int failAfterTokens, Func<GenerationTimelines, Task>? fail,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        var run = Guid.NewGuid().ToString("N")[..12];
        var timelines = new GenerationTimelines(prompts.Count) { RequestIds = [.. Enumerable.Range(0, prompts.Count).Select(i => $"{run}-{i}")] };
        long failedAt = 0;
        var failed = 0;
        Task failing = Task.CompletedTask;
        await Task.WhenAll(Enumerable.Range(0, prompts.Count).Select(async session =>
        {
            var own = options with { RequestId = timelines.RequestIds[session] };
            await foreach (var token in client.GenerateAsync(deployment, prompts[session], own, cancellationToken).ConfigureAwait(false))
            {
                timelines.Add(session, token);
                if (fail is not null && Volatile.Read(ref failed) == 0
                    && Enumerable.Range(0, timelines.Sessions).All(s => timelines.Count(s) >= failAfterTokens) && Interlocked.Exchange(ref failed, 1) == 0)
                {
                    Volatile.Write(ref failedAt, Stopwatch.GetTimestamp());
                    failing = fail(timelines);
                }
            }
        })).ConfigureAwait(false);
        await failing.ConfigureAwait(false);
        if (fail is not null && failed == 0)
        {
            throw new InvalidOperationException($"The generations ended before each had {failAfterTokens} tokens: the failure was not injected.");
        }

        return (timelines, failedAt);
    }
}
