using System.Diagnostics;
using System.Numerics.Tensors;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Grains.FL.Algorithms;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Benchmarks.Round;

/// <summary>
/// The serverful baseline of the round benchmark: one always-on aggregator per job, as a classic FL server has, that
/// receives every update as a managed array in an ordinary grain message (copied into the message, copied out of it),
/// keeps them, and aggregates lazily once the round's last one is in. Its trainers connect to its silo, as the clients
/// of an FL server connect to the server.
/// </summary>
public interface IServerfulAggregatorGrain : IGrainWithStringKey
{
    Task Start(int updatesPerRound, int parameters, int rounds);

    /// <summary>
    /// One update, serialized into the call's message and read out of it into the aggregator's own array (Immutable:
    /// the caller's array is not also deep-copied before sending, as no FL client would copy its update twice).
    /// </summary>
    [ResponseTimeout("00:10:00")]
    Task Submit(int round, Immutable<float[]> update, long examples);

    /// <summary>The round being collected once it is past <paramref name="known"/> (or after <paramref name="wait"/>); rounds+1 when done.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:10:00")]
    Task<int> WaitForRound(int known, TimeSpan wait);

    [AlwaysInterleave]
    Task<List<ServerfulRound>> Rounds();
}

/// <summary>One aggregated round: from its first update to the model, and from its last update to the model.</summary>
[GenerateSerializer]
[Immutable]
public sealed record ServerfulRound([property: Id(0)] int Round, [property: Id(1)] double RoundMilliseconds, [property: Id(2)] double AggregationMilliseconds);

[KeepAlive]
[PreferLocalPlacement] // on the silo the benchmark's client (and then every trainer) talks to: the server's machine
public sealed class ServerfulAggregatorGrain : Grain, IServerfulAggregatorGrain
{
    private readonly List<(float[] Update, long Examples)> _received = [];
    private readonly List<ServerfulRound> _rounds = [];
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private float[] _model = [];
    private int _expected;
    private int _lastRound;
    private int _round = 1;
    private long _firstArrival;

    public Task Start(int updatesPerRound, int parameters, int rounds)
    {
        _expected = updatesPerRound;
        _model = new float[parameters];
        _lastRound = rounds;
        _round = 1;
        _received.Clear();
        _rounds.Clear();
        return Task.CompletedTask;
    }

    public Task Submit(int round, Immutable<float[]> submitted, long examples)
    {
        var update = submitted.Value;
        if (round != _round || update.Length != _model.Length)
        {
            throw new InvalidOperationException($"round {round} with {update.Length:N0} values; the aggregator collects round {_round} of {_model.Length:N0}");
        }

        if (_received.Count == 0)
        {
            _firstArrival = Stopwatch.GetTimestamp();
        }

        _received.Add((update, examples));
        if (_received.Count == _expected)
        {
            // Lazy: everything at the end, one pass per update with the same vector kernel as the rest.
            var closed = Stopwatch.GetTimestamp();
            var total = _received.Sum(r => (double)r.Examples);
            var sum = new float[_model.Length];
            foreach (var (values, weight) in _received)
            {
                AggregationKernels.Accumulate(sum, values, (float)(weight / total));
            }

            TensorPrimitives.Add(_model, sum, _model);
            _rounds.Add(new ServerfulRound(_round, Stopwatch.GetElapsedTime(_firstArrival).TotalMilliseconds, Stopwatch.GetElapsedTime(closed).TotalMilliseconds));
            _received.Clear();
            _round++;
            Interlocked.Exchange(ref _advanced, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }

        return Task.CompletedTask;
    }

    public async Task<int> WaitForRound(int known, TimeSpan wait)
    {
        if (_round <= known)
        {
            await Task.WhenAny(_advanced.Task, Task.Delay(wait));
        }

        return _round;
    }

    public Task<List<ServerfulRound>> Rounds() => Task.FromResult(_rounds.ToList());
}
