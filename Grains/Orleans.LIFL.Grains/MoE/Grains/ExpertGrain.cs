using System.Diagnostics;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Grains.MoE.Model;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// Tarragon's expert worker for one (layer, expert) replica: stateless and deterministic, so any replica answers a
/// replayed call with the same bits. It loads its weights when activated (a shadow is activated, hence loaded, before it
/// is needed) and then only computes. Its key names the silo the deployment chose for it (see <see cref="ExpertKeys"/>),
/// and it runs nowhere else (<see cref="SiloPinnedPlacement"/>): a replica whose silo died is replaced by the
/// deployment on a silo that holds no replica of the same expert, never silently re-activated beside its shadow.
/// </summary>
public interface IExpertGrain : IGrainWithStringKey
{
    /// <summary>Activates the replica, which loads its weights; a shadow stays idle after this.</summary>
    Task<ExpertLoaded> Warm();

    /// <summary>
    /// The expert's SwiGLU output for each token's routed hidden state: <paramref name="routed"/> holds one or more rows of
    /// d_model values (a decoding step sends one, a prefill one per position routed here), and so does the answer.
    /// </summary>
    Task<float[]> Run(float[] routed);

    /// <summary>The same as <see cref="Run"/> for work replayed from a failed replica: it does not queue behind first-time calls.</summary>
    [AlwaysInterleave]
    Task<float[]> Replay(float[] routed);

    [AlwaysInterleave]
    Task<ExpertLoaded> Ping();

    /// <summary>Drops the weights and deactivates (a baseline restart).</summary>
    Task Unload();
}

/// <summary>
/// Where a replica runs, what loading it took, the calls it answered (<paramref name="Replays"/> of them replayed work)
/// and the rows it answered from its memo of recent rows rather than computed (<paramref name="RememberedRows"/>).
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record ExpertLoaded(
    [property: Id(0)] string Key,
    [property: Id(1)] string Silo,
    [property: Id(2)] TimeSpan LoadTime,
    [property: Id(3)] long WeightBytes,
    [property: Id(4)] long Calls,
    [property: Id(5)] long Replays,
    [property: Id(6)] long RememberedRows);

/// <summary>The keys of expert replicas: "node/silo/moe/{deployment}/{epoch}/{layer}/{expert}/{replica}".</summary>
public static class ExpertKeys
{
    public static string Key(string node, string silo, string deployment, int epoch, int layer, int expert, int replica) =>
        LocalityAwarePlacement.Key(node, silo, $"moe/{deployment}/{epoch}/{layer}/{expert}/{replica}");

    public static (string Deployment, int Epoch, int Layer, int Expert, int Replica) Parse(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var parts = key.Split('/');
        if (parts.Length < 8 || parts[^6] != "moe"
            || !int.TryParse(parts[^4], out var epoch) || !int.TryParse(parts[^3], out var layer)
            || !int.TryParse(parts[^2], out var expert) || !int.TryParse(parts[^1], out var replica))
        {
            throw new ArgumentException($"'{key}' is not an expert key (node/silo/moe/deployment/epoch/layer/expert/replica).", nameof(key));
        }

        return (parts[^5], epoch, layer, expert, replica);
    }
}

[SiloPinnedPlacement]
public sealed class ExpertGrain : Grain, IExpertGrain
{
    private ExpertWeights? _weights;
    private ExpertRowMemo? _memo;
    private TimeSpan _loadTime;
    private int _modelDim;
    private long _calls;
    private long _replays;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var (deployment, _, layer, expert, _) = ExpertKeys.Parse(GrainId.Key);
        var spec = await GrainFactory.GetGrain<IMoeDeploymentGrain>(deployment).GetSpec()
            ?? throw new InvalidOperationException($"Deployment {deployment} of expert {GrainId.Key} is not deployed.");
        var watch = Stopwatch.StartNew();
        var (config, weights) = spec.WeightsPath is { } path
            ? MoeWeights.ReadExpert(path, layer, expert)
            : (spec.Config!, MoeWeights.RandomExpert(spec.Config!, spec.Seed, layer, expert));
        _loadTime = watch.Elapsed;
        _modelDim = config.ModelDim;
        _weights = weights;
    }

    public Task<ExpertLoaded> Warm() => Task.FromResult(Loaded());

    public Task<ExpertLoaded> Ping() => Task.FromResult(Loaded());

    public Task<float[]> Run(float[] routed) => Task.FromResult(Compute(routed));

    public Task<float[]> Replay(float[] routed)
    {
        var output = Compute(routed);
        _replays++;
        return Task.FromResult(output);
    }

    public Task Unload()
    {
        _weights = null;
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    private float[] Compute(float[] routed)
    {
        ArgumentNullException.ThrowIfNull(routed);
        var weights = _weights ?? throw new InvalidOperationException($"Expert {GrainId.Key} was unloaded.");
        if (routed.Length == 0 || routed.Length % _modelDim != 0)
        {
            throw new ArgumentException($"Expert {GrainId.Key} takes rows of {_modelDim} values; the call gave {routed.Length}.", nameof(routed));
        }

        for (var i = 0; i < routed.Length; i++)
        {
            if (!float.IsFinite(routed[i]))
            {
                throw new ArgumentException($"Expert {GrainId.Key} was given a non-finite input ({routed[i]}) at index {i}.", nameof(routed));
            }
        }

        // Row by row with the one-token kernel, so a row's answer has the same bits whatever it is batched with; the rows
        // after the first find the weights in the cache. A row this replica answered lately (a resumed session recomputing
        // the positions its predecessor decoded past the checkpoint) is answered from its memo.
        var output = new float[routed.Length];
        var memo = _memo ??= new ExpertRowMemo(_modelDim);
        for (var row = 0; row < routed.Length; row += _modelDim)
        {
            var input = routed.AsSpan(row, _modelDim);
            var answer = output.AsSpan(row, _modelDim);
            if (!memo.TryGet(input, answer, out var fingerprint))
            {
                MoeModel.RunExpert(weights, input, answer);
                memo.Add(input, answer, fingerprint);
            }
        }

        _calls++;
        return output;
    }

    private ExpertLoaded Loaded() =>
        new(GrainId.Key, GrainContext.Silo.ToString(), _loadTime, _weights?.Bytes ?? 0, _calls, _replays, _memo?.Hits ?? 0);
}
