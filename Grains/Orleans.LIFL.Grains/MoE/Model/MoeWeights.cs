using System.Text.Json;

namespace Orleans.LIFL.Grains.MoE.Model;

/// <summary>One layer's attention, norms and router (row-major matrices, [out, in]).</summary>
public sealed record LayerWeights(float[] AttentionNorm, float[] Query, float[] Key, float[] Value, float[] Output, float[] FfnNorm, float[] Router);

/// <summary>One expert's SwiGLU feed-forward: down(silu(gate·x) ⊙ up·x); gate and up are [ff, d], down is [d, ff].</summary>
public sealed record ExpertWeights(int Layer, int Expert, WeightMatrix Gate, WeightMatrix Up, WeightMatrix Down)
{
    /// <summary>The memory the three matrices take.</summary>
    public long Bytes => Gate.Bytes + Up.Bytes + Down.Bytes;
}

/// <summary>
/// The weights of a <see cref="MoeConfig"/> decoder, named as Mixtral's safetensors name them
/// (<c>model.layers.{l}.block_sparse_moe.experts.{e}.w1.weight</c> and so on). The attention side (embeddings,
/// attention, norms, routers, LM head) is held; experts are loaded one at a time on demand — from the file, reading
/// exactly that expert's bytes, or generated from the seed — as an expert worker does.
/// </summary>
public sealed class MoeWeights
{
    /// <summary>The safetensors metadata key holding the configuration as JSON.</summary>
    public const string ConfigKey = "lifl.moe.config";

    private readonly Func<int, int, ExpertWeights> _loadExpert;

    private MoeWeights(MoeConfig config, float[] embedding, LayerWeights[] layers, float[] finalNorm, float[] lmHead, Func<int, int, ExpertWeights> loadExpert)
    {
        Config = config;
        Embedding = embedding;
        Layers = layers;
        FinalNorm = finalNorm;
        LmHead = lmHead;
        _loadExpert = loadExpert;
    }

    public MoeConfig Config { get; }

    public float[] Embedding { get; }

    public IReadOnlyList<LayerWeights> Layers { get; }

    public float[] FinalNorm { get; }

    public float[] LmHead { get; }

    /// <summary>Loads expert <paramref name="expert"/> of <paramref name="layer"/> (from the file, or from the seed).</summary>
    public ExpertWeights LoadExpert(int layer, int expert)
    {
        CheckExpert(Config, layer, expert);
        return _loadExpert(layer, expert);
    }

    /// <summary>Seeded random weights: each tensor from its own stream (seed and name), so one expert is made alone.</summary>
    public static MoeWeights Random(MoeConfig config, ulong seed)
    {
        config = config.Validated();
        var (d, ff, v) = (config.ModelDim, config.FeedForwardDim, config.Vocabulary);
        var layers = Enumerable.Range(0, config.Layers).Select(l => new LayerWeights(
            Ones(d),
            Uniform(seed, Name(l, "self_attn.q_proj"), d * d, d),
            Uniform(seed, Name(l, "self_attn.k_proj"), d * d, d),
            Uniform(seed, Name(l, "self_attn.v_proj"), d * d, d),
            Uniform(seed, Name(l, "self_attn.o_proj"), d * d, d),
            Ones(d),
            Uniform(seed, Name(l, "block_sparse_moe.gate"), config.Experts * d, d))).ToArray();
        return new MoeWeights(
            config,
            Uniform(seed, "model.embed_tokens.weight", v * d, 1),
            layers,
            Ones(d),
            Uniform(seed, "lm_head.weight", v * d, d),
            (l, e) => RandomExpert(config, seed, l, e));
    }

    /// <summary>One expert of <see cref="Random"/>'s weights, made alone (what an expert worker of a seeded model loads).</summary>
    public static ExpertWeights RandomExpert(MoeConfig config, ulong seed, int layer, int expert)
    {
        config = config.Validated();
        CheckExpert(config, layer, expert);
        var (d, ff) = (config.ModelDim, config.FeedForwardDim);
        return new ExpertWeights(
            layer,
            expert,
            WeightMatrix.Float32(Uniform(seed, ExpertName(layer, expert, "w1"), ff * d, d), ff, d),
            WeightMatrix.Float32(Uniform(seed, ExpertName(layer, expert, "w3"), ff * d, d), ff, d),
            WeightMatrix.Float32(Uniform(seed, ExpertName(layer, expert, "w2"), d * ff, ff), d, ff));
    }

    /// <summary>The configuration a weights file carries in its metadata.</summary>
    public static MoeConfig ReadConfig(SafeTensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (!file.Metadata.TryGetValue(ConfigKey, out var json))
        {
            throw new InvalidDataException($"{file.Path} has no '{ConfigKey}' metadata: the decoder's configuration is unknown.");
        }

        return (JsonSerializer.Deserialize<MoeConfig>(json) ?? throw new InvalidDataException($"{file.Path}: '{ConfigKey}' is empty.")).Validated();
    }

    /// <summary>Reads one expert's three matrices from a weights file, and nothing else of it but the header (which gives the configuration).</summary>
    public static (MoeConfig Config, ExpertWeights Weights) ReadExpert(string path, int layer, int expert)
    {
        using var file = SafeTensorsFile.Open(path);
        var config = ReadConfig(file);
        CheckExpert(config, layer, expert);
        return (config, ReadExpert(file, config, layer, expert));
    }

    private static ExpertWeights ReadExpert(SafeTensorsFile file, MoeConfig config, int layer, int expert)
    {
        var (d, ff) = (config.ModelDim, config.FeedForwardDim);
        return new ExpertWeights(
            layer,
            expert,
            ReadMatrix(file, ExpertName(layer, expert, "w1"), ff, d),
            ReadMatrix(file, ExpertName(layer, expert, "w3"), ff, d),
            ReadMatrix(file, ExpertName(layer, expert, "w2"), d, ff));
    }

    /// <summary>An expert matrix as the file holds it: bfloat16 stays bfloat16; float16 is widened to float32, as float32 is read.</summary>
    private static WeightMatrix ReadMatrix(SafeTensorsFile file, string name, int rows, int columns) =>
        Expect(file, name, (long)rows * columns).DType == "BF16"
            ? WeightMatrix.BFloat16(file.ReadBFloat16(name), rows, columns)
            : WeightMatrix.Float32(file.ReadFloat32(name), rows, columns);

    private static float[] ReadTensor(SafeTensorsFile file, string name, long elements)
    {
        Expect(file, name, elements);
        return file.ReadFloat32(name);
    }

    private static SafeTensorInfo Expect(SafeTensorsFile file, string name, long elements)
    {
        var info = file.Info(name);
        return info.Elements == elements
            ? info
            : throw new InvalidDataException($"{file.Path}: tensor {name} has {info.Elements:N0} values; the configuration needs {elements:N0}.");
    }

    private static void CheckExpert(MoeConfig config, int layer, int expert)
    {
        if (layer < 0 || layer >= config.Layers || expert < 0 || expert >= config.Experts)
        {
            throw new ArgumentOutOfRangeException(nameof(expert), $"expert ({layer}, {expert}) does not exist: {config.Layers} layers of {config.Experts} experts.");
        }
    }

    /// <summary>
    /// Reads the attention side of a safetensors file (its configuration from the metadata); experts are read from it
    /// when loaded. The file stays open for that: dispose the returned <see cref="SafeTensorsFile"/> when done.
    /// </summary>
    public static (MoeWeights Weights, SafeTensorsFile File) Load(string path)
    {
        var file = SafeTensorsFile.Open(path);
        try
        {
            var config = ReadConfig(file);
            var (d, v) = ((long)config.ModelDim, (long)config.Vocabulary);
            float[] Read(string name, long elements) => ReadTensor(file, name, elements);
            var layers = Enumerable.Range(0, config.Layers).Select(l => new LayerWeights(
                Read(Name(l, "input_layernorm"), d),
                Read(Name(l, "self_attn.q_proj"), d * d),
                Read(Name(l, "self_attn.k_proj"), d * d),
                Read(Name(l, "self_attn.v_proj"), d * d),
                Read(Name(l, "self_attn.o_proj"), d * d),
                Read(Name(l, "post_attention_layernorm"), d),
                Read(Name(l, "block_sparse_moe.gate"), config.Experts * d))).ToArray();
            var weights = new MoeWeights(
                config,
                Read("model.embed_tokens.weight", v * d),
                layers,
                Read("model.norm.weight", d),
                Read("lm_head.weight", v * d),
                (l, e) => ReadExpert(file, config, l, e));
            return (weights, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes every tensor, experts included, with the configuration in the metadata: as float32, or with
    /// <paramref name="bfloat16"/> as bfloat16 (each value rounded to the nearest; bfloat16 experts are written as they are).
    /// </summary>
    public void Save(string path, bool bfloat16 = false)
    {
        var (d, ff, v) = ((long)Config.ModelDim, (long)Config.FeedForwardDim, (long)Config.Vocabulary);
        var tensors = new List<(string, IReadOnlyList<long>, float[])> { ("model.embed_tokens.weight", [v, d], Embedding) };
        for (var l = 0; l < Config.Layers; l++)
        {
            var layer = Layers[l];
            tensors.Add((Name(l, "input_layernorm"), [d], layer.AttentionNorm));
            tensors.Add((Name(l, "self_attn.q_proj"), [d, d], layer.Query));
            tensors.Add((Name(l, "self_attn.k_proj"), [d, d], layer.Key));
            tensors.Add((Name(l, "self_attn.v_proj"), [d, d], layer.Value));
            tensors.Add((Name(l, "self_attn.o_proj"), [d, d], layer.Output));
            tensors.Add((Name(l, "post_attention_layernorm"), [d], layer.FfnNorm));
            tensors.Add((Name(l, "block_sparse_moe.gate"), [Config.Experts, d], layer.Router));
            for (var e = 0; e < Config.Experts; e++)
            {
                var expert = LoadExpert(l, e);
                tensors.Add((ExpertName(l, e, "w1"), [ff, d], expert.Gate.ToFloat32()));
                tensors.Add((ExpertName(l, e, "w3"), [ff, d], expert.Up.ToFloat32()));
                tensors.Add((ExpertName(l, e, "w2"), [d, ff], expert.Down.ToFloat32()));
            }
        }

        tensors.Add(("model.norm.weight", [d], FinalNorm));
        tensors.Add(("lm_head.weight", [v, d], LmHead));
        SafeTensorsFile.Write(path, tensors, new Dictionary<string, string> { [ConfigKey] = JsonSerializer.Serialize(Config) }, bfloat16);
    }

    private static string Name(int layer, string tensor) => $"model.layers.{layer}.{tensor}.weight";

    private static string ExpertName(int layer, int expert, string matrix) => $"model.layers.{layer}.block_sparse_moe.experts.{expert}.{matrix}.weight";

    private static float[] Ones(int length) => Enumerable.Repeat(1f, length).ToArray();

    /// <summary>Uniform in ±1/√fanIn from a SplitMix64 stream keyed by the seed and the tensor's name (FNV-1a).</summary>
    private static float[] Uniform(ulong seed, string name, long length, int fanIn)
    {
        var state = seed ^ Fnv1a(name);
        var bound = 1f / MathF.Sqrt(fanIn);
        var values = new float[length];
        for (var i = 0; i < values.Length; i++)
        {
            var unit = (SplitMix64(ref state) >> 40) * (1.0f / (1 << 24)); // [0, 1) in 24 bits: exact in float
            values[i] = ((2 * unit) - 1) * bound;
        }

        return values;
    }

    internal static ulong SplitMix64(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Fnv1a(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in text)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return hash;
    }
}
