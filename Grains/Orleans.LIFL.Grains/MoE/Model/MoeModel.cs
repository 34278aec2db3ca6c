using System.Runtime.CompilerServices;
using System.Text;

namespace Orleans.LIFL.Grains.MoE.Model;

/// <summary>Where a layer's token goes: the router's top-k experts, best first, and their softmax weights.</summary>
public readonly record struct ExpertRoute(int[] Experts, float[] Weights);

/// <summary>
/// A Mixtral-style decoder on the CPU, split as Tarragon splits it: the attention side (<see cref="Embed"/>,
/// <see cref="Attend"/>, <see cref="Route"/>, <see cref="Combine"/>, <see cref="Logits"/>), which holds a session's
/// KV cache, and the stateless experts (<see cref="RunExpert"/>), which may run anywhere. A token's step is: embed;
/// per layer attend, route, run the chosen experts on the routed input, combine; then the LM head. Every kernel is
/// deterministic (<see cref="MoeKernels"/>), so an expert gives the same bits on any silo and a replayed call is
/// indistinguishable from the first.
/// </summary>
public sealed class MoeModel
{
    private readonly MoeWeights _weights;

    public MoeModel(MoeWeights weights)
    {
        _weights = weights ?? throw new ArgumentNullException(nameof(weights));
    }

    public MoeConfig Config => _weights.Config;

    /// <summary>The byte-level tokens of a text (its UTF-8 bytes).</summary>
    public static int[] Tokenize(string text) => [.. Encoding.UTF8.GetBytes(text ?? throw new ArgumentNullException(nameof(text))).Select(b => (int)b)];

    public MoeWeights Weights => _weights;

    /// <summary>The hidden state of <paramref name="token"/> (its embedding row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Embed(int token, Span<float> hidden)
    {
        if ((uint)token >= (uint)Config.Vocabulary)
        {
            throw new ArgumentOutOfRangeException(nameof(token), token, $"the vocabulary has {Config.Vocabulary} tokens");
        }

        _weights.Embedding.AsSpan(token * Config.ModelDim, Config.ModelDim).CopyTo(hidden);
    }

    /// <summary>
    /// Layer <paramref name="layer"/>'s attention for the token at <paramref name="position"/>: hidden += attention
    /// over every cached position and this one (written to <paramref name="cache"/>); then <paramref name="routed"/>
    /// is the normed hidden state the experts take.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Attend(int layer, Span<float> hidden, int position, KvCache cache, Span<float> routed)
    {
        var (d, headDim, heads) = (Config.ModelDim, Config.HeadDim, Config.Heads);
        var w = _weights.Layers[layer];
        Span<float> normed = stackalloc float[d];
        Span<float> query = stackalloc float[d];
        Span<float> key = stackalloc float[d];
        Span<float> value = stackalloc float[d];
        Span<float> cos = stackalloc float[headDim / 2];
        Span<float> sin = stackalloc float[headDim / 2];
        MoeKernels.RmsNorm(hidden, w.AttentionNorm, Config.NormEpsilon, normed);
        MoeKernels.MatVec(w.Query, normed, query);
        MoeKernels.MatVec(w.Key, normed, key);
        MoeKernels.MatVec(w.Value, normed, value);
        MoeKernels.RopeTables(position, headDim, Config.RopeTheta, cos, sin);
        MoeKernels.Rope(query, headDim, cos, sin);
        MoeKernels.Rope(key, headDim, cos, sin);
        cache.Write(layer, position, key, value);

        var length = position + 1;
        var keys = cache.Keys(layer, length);
        var values = cache.Values(layer, length);
        var scores = new float[length];
        Span<float> mixed = stackalloc float[d];
        mixed.Clear();
        var scale = 1f / MathF.Sqrt(headDim);
        for (var head = 0; head < heads; head++)
        {
            var offset = head * headDim;
            MoeKernels.Scores(query.Slice(offset, headDim), keys, d, offset, scale, scores);
            MoeKernels.Softmax(scores);
            MoeKernels.WeightedSum(scores, values, d, offset, mixed.Slice(offset, headDim));
        }

        Span<float> attended = stackalloc float[d];
        MoeKernels.MatVec(w.Output, mixed, attended);
        for (var i = 0; i < d; i++)
        {
            hidden[i] += attended[i];
        }

        MoeKernels.RmsNorm(hidden, w.FfnNorm, Config.NormEpsilon, routed);
    }

    /// <summary>The router's choice for layer <paramref name="layer"/>: top-k of its logits, weighted by their softmax.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public ExpertRoute Route(int layer, ReadOnlySpan<float> routed)
    {
        Span<float> logits = stackalloc float[Config.Experts];
        MoeKernels.MatVec(_weights.Layers[layer].Router, routed, logits);
        var experts = new int[Config.TopK];
        MoeKernels.TopK(logits, experts);
        var weights = new float[experts.Length];
        for (var k = 0; k < experts.Length; k++)
        {
            weights[k] = logits[experts[k]];
        }

        MoeKernels.Softmax(weights);
        return new ExpertRoute(experts, weights);
    }

    /// <summary>One expert's SwiGLU on the routed input: stateless, and what an expert worker runs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunExpert(ExpertWeights expert, ReadOnlySpan<float> routed, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(expert);
        var ff = expert.Gate.Rows;
        var gate = new float[ff];
        var up = new float[ff];
        expert.Gate.MatVec(routed, gate);
        expert.Up.MatVec(routed, up);
        for (var i = 0; i < ff; i++)
        {
            gate[i] = MoeKernels.Silu(gate[i]) * up[i];
        }

        expert.Down.MatVec(gate, output);
    }

    /// <summary>hidden += Σ weightᵢ · outputᵢ, in the route's order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Combine(Span<float> hidden, ExpertRoute route, IReadOnlyList<float[]> outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        for (var k = 0; k < route.Experts.Length; k++)
        {
            MoeKernels.AddScaled(hidden, route.Weights[k], outputs[k]);
        }
    }

    /// <summary>The LM head's logits of the final hidden state.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Logits(ReadOnlySpan<float> hidden, Span<float> logits)
    {
        Span<float> normed = stackalloc float[Config.ModelDim];
        MoeKernels.RmsNorm(hidden, _weights.FinalNorm, Config.NormEpsilon, normed);
        MoeKernels.MatVec(_weights.LmHead, normed, logits);
    }

    /// <summary>
    /// Runs the attention side once on a scratch cache, the experts' outputs standing in as zeros, so that a process about
    /// to serve sessions has compiled the decode path's kernels before a real token waits for them (a silo taking over
    /// the sessions of a dead one would compile them in the failover's stall). Leaves the model as it was.
    /// </summary>
    public void WarmUp()
    {
        var logits = new float[Config.Vocabulary];
        Step(0, 0, new KvCache(Config), static (_, _, _, _) => { }, logits);
        _ = new Sampling().Next(logits, 0);
        _ = new Sampling(Temperature: 1, Seed: 1).Next(logits, 0);
    }

    /// <summary>
    /// One whole step in this process: the token at <paramref name="position"/> through every layer, its experts run by
    /// <paramref name="experts"/> (layer, expert → weights), into <paramref name="logits"/>.
    /// </summary>
    public void Step(int token, int position, KvCache cache, Func<int, int, ExpertWeights> experts, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(experts);
        Step(token, position, cache, (layer, expert, routed, output) => RunExpert(experts(layer, expert), routed, output), logits);
    }

    /// <summary>Expert (<paramref name="layer"/>, <paramref name="expert"/>) of a step on its routed input, into a zeroed output.</summary>
    private delegate void ExpertRun(int layer, int expert, ReadOnlySpan<float> routed, Span<float> output);

    private void Step(int token, int position, KvCache cache, ExpertRun runExpert, Span<float> logits)
    {
        Span<float> hidden = stackalloc float[Config.ModelDim];
        Span<float> routed = stackalloc float[Config.ModelDim];
        Embed(token, hidden);
        for (var layer = 0; layer < Config.Layers; layer++)
        {
            Attend(layer, hidden, position, cache, routed);
            var route = Route(layer, routed);
            var outputs = new float[route.Experts.Length][];
            for (var k = 0; k < outputs.Length; k++)
            {
                outputs[k] = new float[Config.ModelDim];
                runExpert(layer, route.Experts[k], routed, outputs[k]);
            }

            Combine(hidden, route, outputs);
        }

        Logits(hidden, logits);
    }

    /// <summary>
    /// The whole generation in this process, every expert loaded here once: the reference a served generation must
    /// equal token for token.
    /// </summary>
    public int[] Generate(IReadOnlyList<int> prompt, int maxTokens, Sampling sampling)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(sampling);
        ArgumentOutOfRangeException.ThrowIfLessThan(prompt.Count, 1);
        var cache = new KvCache(Config);
        var logits = new float[Config.Vocabulary];
        var experts = new Dictionary<(int, int), ExpertWeights>();
        ExpertWeights Expert(int layer, int expert) =>
            experts.TryGetValue((layer, expert), out var loaded) ? loaded : experts[(layer, expert)] = _weights.LoadExpert(layer, expert);
        var output = new List<int>(maxTokens);
        for (var position = 0; output.Count < maxTokens; position++)
        {
            Step(position < prompt.Count ? prompt[position] : output[^1], position, cache, Expert, logits);
            if (position >= prompt.Count - 1)
            {
                output.Add(sampling.Next(logits, position));
            }
        }

        return [.. output];
    }
}

/// <summary>How the next token is chosen: greedy (temperature 0) or sampled at a temperature from a seeded stream.</summary>
public sealed record Sampling(float Temperature = 0, ulong Seed = 0)
{
    /// <summary>
    /// The token for <paramref name="position"/>: the arg-max, or a draw from softmax(logits / T) with a uniform
    /// number that depends only on the seed and the position, so a resumed session draws what it would have drawn.
    /// </summary>
    public int Next(ReadOnlySpan<float> logits, int position)
    {
        if (!(Temperature > 0))
        {
            return MoeKernels.ArgMax(logits);
        }

        var probabilities = new float[logits.Length];
        for (var i = 0; i < logits.Length; i++)
        {
            probabilities[i] = logits[i] / Temperature;
        }

        MoeKernels.Softmax(probabilities);
        var state = Seed ^ ((ulong)position * 0xD1B54A32D192ED03UL);
        var u = (MoeWeights.SplitMix64(ref state) >> 40) * (1.0f / (1 << 24));
        var cumulative = 0f;
        for (var i = 0; i < probabilities.Length; i++)
        {
            cumulative += probabilities[i];
            if (u < cumulative)
            {
                return i;
            }
        }

        return MoeKernels.ArgMax(probabilities);
    }
}
