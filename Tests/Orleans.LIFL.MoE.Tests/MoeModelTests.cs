using System.Buffers.Binary;
using System.Text;
using Orleans.LIFL.Grains.MoE.Model;
using Xunit;

namespace Orleans.LIFL.MoE.Tests;

public sealed class MoeModelTests : IDisposable
{
    private static readonly MoeConfig Tiny = new() { Layers = 2, ModelDim = 16, Heads = 2, Experts = 4, TopK = 2, FeedForwardDim = 24, MaxSequence = 32 };

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "lifl-moe-" + Guid.NewGuid().ToString("N")[..8]);

    public MoeModelTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>
    /// The decoder's logits over a short sequence match a plain double-precision implementation of the same
    /// architecture written here from its definition (RMSNorm, rotary multi-head attention over a growing cache,
    /// softmax top-k routing, SwiGLU experts, LM head).
    /// </summary>
    [Fact]
    public void Logits_match_a_double_precision_reference()
    {
        var weights = MoeWeights.Random(Tiny, seed: 11);
        var model = new MoeModel(weights);
        var cache = new KvCache(Tiny);
        var reference = new ReferenceDecoder(weights);
        var logits = new float[Tiny.Vocabulary];
        var tokens = Encoding.UTF8.GetBytes("Hello, MoE!");
        for (var position = 0; position < tokens.Length; position++)
        {
            model.Step(tokens[position], position, cache, weights.LoadExpert, logits);
            var expected = reference.Step(tokens[position]);
            for (var v = 0; v < logits.Length; v++)
            {
                Assert.True(Math.Abs(logits[v] - expected[v]) < 2e-4, $"position {position}, token {v}: {logits[v]} vs {expected[v]}");
            }
        }
    }

    /// <summary>
    /// Two models built apart from the same seed give the same bits; a cache cut back to a prefix and decoded again
    /// (a session restored from a checkpoint) gives the same bits as the first time.
    /// </summary>
    [Fact]
    public void Outputs_are_bit_identical_across_instances_and_after_a_restore()
    {
        var first = Generate(new MoeModel(MoeWeights.Random(Tiny, 3)), "abc", 12, new Sampling(), out var cache, out var logitsA);
        var second = Generate(new MoeModel(MoeWeights.Random(Tiny, 3)), "abc", 12, new Sampling(), out _, out var logitsB);
        Assert.Equal(first, second);
        Assert.Equal(logitsA, logitsB);
        Assert.NotEqual(first, Generate(new MoeModel(MoeWeights.Random(Tiny, 4)), "abc", 12, new Sampling(), out _, out _));

        // Replay positions 6.. from a cache cut back to 6.
        var model = new MoeModel(MoeWeights.Random(Tiny, 3));
        var sequence = Encoding.UTF8.GetBytes("abc").Select(b => (int)b).Concat(first).ToArray();
        cache.Truncate(6);
        var logits = new float[Tiny.Vocabulary];
        for (var position = 6; position < sequence.Length - 1; position++)
        {
            model.Step(sequence[position], position, cache, model.Weights.LoadExpert, logits);
            Assert.Equal(sequence[position + 1], new Sampling().Next(logits, position));
        }

        Assert.Equal(logitsA, logits);
    }

    /// <summary>
    /// A silo warms a model up before sessions need it (<see cref="MoeModel.WarmUp"/>): the warmed model decodes the same
    /// bits as one never warmed, for greedy and sampled generation alike.
    /// </summary>
    [Fact]
    public void A_warm_up_leaves_the_model_decoding_the_same_bits()
    {
        var warmed = new MoeModel(MoeWeights.Random(Tiny, 5));
        warmed.WarmUp();
        warmed.WarmUp();
        foreach (var sampling in new[] { new Sampling(), new Sampling(Temperature: 0.8f, Seed: 9) })
        {
            var expected = Generate(new MoeModel(MoeWeights.Random(Tiny, 5)), "warm", 10, sampling, out _, out var expectedLogits);
            var actual = Generate(warmed, "warm", 10, sampling, out _, out var actualLogits);
            Assert.Equal(expected, actual);
            Assert.Equal(expectedLogits, actualLogits);
        }
    }

    /// <summary>Seeded sampling is reproducible, depends on the seed, and draws in proportion to the probabilities.</summary>
    [Fact]
    public void Seeded_sampling_is_reproducible_and_follows_the_distribution()
    {
        var model = new MoeModel(MoeWeights.Random(Tiny, 3));
        var a = Generate(model, "xy", 10, new Sampling(0.8f, 42), out _, out _);
        Assert.Equal(a, Generate(model, "xy", 10, new Sampling(0.8f, 42), out _, out _));
        Assert.NotEqual(a, Generate(model, "xy", 10, new Sampling(0.8f, 43), out _, out _));

        // Logits 0 and ln 3 at temperature 1: about a quarter and three quarters over many positions.
        var sampling = new Sampling(1f, 7);
        var ones = Enumerable.Range(0, 4000).Count(p => sampling.Next([0f, MathF.Log(3)], p) == 1);
        Assert.InRange(ones, 2850, 3150);
    }

    /// <summary>Weights saved to safetensors load back identical; an expert is read from the file on its own.</summary>
    [Fact]
    public void Weights_round_trip_through_safetensors()
    {
        var weights = MoeWeights.Random(Tiny, 21);
        var path = Path.Combine(_directory, "tiny.safetensors");
        weights.Save(path);
        var (loaded, file) = MoeWeights.Load(path);
        using (file)
        {
            Assert.Equal(Tiny, loaded.Config);
            Assert.Equal(weights.Embedding, loaded.Embedding);
            Assert.Equal(weights.LmHead, loaded.LmHead);
            Assert.Equal(weights.Layers[1].Router, loaded.Layers[1].Router);
            var expert = loaded.LoadExpert(1, 3);
            Assert.Equal(weights.LoadExpert(1, 3).Down.ToFloat32(), expert.Down.ToFloat32());
            Assert.False(expert.Down.IsBFloat16);
            var (config, alone) = MoeWeights.ReadExpert(path, 1, 3);
            Assert.Equal(Tiny, config);
            Assert.Equal(expert.Gate.ToFloat32(), alone.Gate.ToFloat32());
            Assert.Equal(expert.Up.ToFloat32(), alone.Up.ToFloat32());
            Assert.Equal(expert.Down.ToFloat32(), alone.Down.ToFloat32());
            Assert.Equal(3 * Tiny.Layers * Tiny.Experts + (7 * Tiny.Layers) + 3, file.Tensors.Count);
            Assert.Equal([(long)Tiny.ModelDim, Tiny.FeedForwardDim], file.Info("model.layers.1.block_sparse_moe.experts.3.w2.weight").Shape);

            var original = Generate(new MoeModel(weights), "ok", 6, new Sampling(), out _, out _);
            Assert.Equal(original, Generate(new MoeModel(loaded), "ok", 6, new Sampling(), out _, out _));
        }
    }

    /// <summary>
    /// Weights saved as bfloat16 are their values rounded to the nearest bfloat16; loaded, the experts stay bfloat16
    /// (half the memory) and decode exactly as the same weights widened to float32 do: the same tokens, the same logits.
    /// </summary>
    [Fact]
    public void Bfloat16_weights_keep_their_experts_narrow_and_decode_as_their_widening()
    {
        var weights = MoeWeights.Random(Tiny, 22);
        var narrowPath = Path.Combine(_directory, "bf16.safetensors");
        weights.Save(narrowPath, bfloat16: true);
        var (narrow, narrowFile) = MoeWeights.Load(narrowPath);
        using (narrowFile)
        {
            Assert.Equal("BF16", narrowFile.Info("model.layers.1.block_sparse_moe.experts.3.w1.weight").DType);
            Assert.Equal(weights.LmHead.Select(v => MoeKernels.Widen(MoeKernels.Narrow(v))), narrow.LmHead);
            var expert = narrow.LoadExpert(1, 3);
            Assert.True(expert.Gate.IsBFloat16 && expert.Up.IsBFloat16 && expert.Down.IsBFloat16);
            Assert.Equal(weights.LoadExpert(1, 3).Bytes / 2, expert.Bytes);
            Assert.Equal(weights.LoadExpert(1, 3).Up.ToFloat32().Select(v => MoeKernels.Widen(MoeKernels.Narrow(v))), expert.Up.ToFloat32());
            Assert.True(MoeWeights.ReadExpert(narrowPath, 1, 3).Weights.Down.IsBFloat16);

            // The same values as float32 (saved widened: exact), decoded with the float32 kernels.
            var widePath = Path.Combine(_directory, "widened.safetensors");
            narrow.Save(widePath);
            var (wide, wideFile) = MoeWeights.Load(widePath);
            using (wideFile)
            {
                Assert.False(wide.LoadExpert(1, 3).Gate.IsBFloat16);
                Assert.Contains("is F32, not BF16", Assert.Throws<InvalidDataException>(() => wideFile.ReadBFloat16("lm_head.weight")).Message, StringComparison.Ordinal);
                var tokens = Generate(new MoeModel(narrow), "bf", 8, new Sampling(), out _, out var narrowLogits);
                Assert.Equal(tokens, Generate(new MoeModel(wide), "bf", 8, new Sampling(), out _, out var wideLogits));
                Assert.Equal(wideLogits.Select(BitConverter.SingleToInt32Bits), narrowLogits.Select(BitConverter.SingleToInt32Bits));
            }
        }
    }

    /// <summary>F16 and BF16 tensors read as float32.</summary>
    [Fact]
    public void Half_precision_tensors_read_as_float32()
    {
        var path = Path.Combine(_directory, "half.safetensors");
        var f16 = new[] { (Half)1.5f, (Half)(-2f) }.SelectMany(h => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits(h))).ToArray();
        var bf16 = new[] { 3.25f, -0.5f }.SelectMany(f => BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits(f) >> 16))).ToArray();
        WriteRaw(path, """{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}}""", [.. f16, .. bf16]);
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal([1.5f, -2f], file.ReadFloat32("a"));
        Assert.Equal([3.25f, -0.5f], file.ReadFloat32("b"));
    }

    /// <summary>A malformed file is refused with an error that names what is wrong.</summary>
    [Theory]
    [InlineData("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}""", 8, "data_offsets")]
    [InlineData("""{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 12 bytes")]
    [InlineData("""{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}""", 8, "is I64")]
    [InlineData("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "overlap")]
    [InlineData("""{"w":{"dtype":"F32"}}""", 8, "needs a dtype, a shape")]
    [InlineData("""{"w": [1, 2""", 8, "not JSON")]
    public void Malformed_files_are_refused_with_the_reason(string header, int dataBytes, string reason)
    {
        var path = Path.Combine(_directory, "bad.safetensors");
        WriteRaw(path, header, new byte[dataBytes]);
        var error = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_header_longer_than_the_file_is_refused()
    {
        var path = Path.Combine(_directory, "short.safetensors");
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1000);
        File.WriteAllBytes(path, bytes);
        Assert.Contains("does not fit", Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path).Dispose()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_configurations_and_tokens_are_refused()
    {
        Assert.Contains("heads", Assert.Throws<ArgumentException>(() => MoeWeights.Random(Tiny with { Heads = 3 }, 1)).Message, StringComparison.Ordinal);
        Assert.Contains("TopK", Assert.Throws<ArgumentException>(() => MoeWeights.Random(Tiny with { TopK = 5 }, 1)).Message, StringComparison.Ordinal);
        var model = new MoeModel(MoeWeights.Random(Tiny, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Step(256, 0, new KvCache(Tiny), model.Weights.LoadExpert, new float[256]));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Weights.LoadExpert(0, 4));
    }

    private static List<int> Generate(MoeModel model, string prompt, int count, Sampling sampling, out KvCache cache, out float[] logits)
    {
        cache = new KvCache(model.Config);
        logits = new float[model.Config.Vocabulary];
        var tokens = Encoding.UTF8.GetBytes(prompt).Select(b => (int)b).ToList();
        var generated = new List<int>();
        for (var position = 0; generated.Count < count; position++)
        {
            model.Step(tokens[position], position, cache, model.Weights.LoadExpert, logits);
            if (position >= tokens.Count - 1)
            {
                var next = sampling.Next(logits, position);
                tokens.Add(next);
                generated.Add(next);
            }
        }

        return generated;
    }

    private static void WriteRaw(string path, string header, byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>The same decoder in double precision, written from its definition.</summary>
    private sealed class ReferenceDecoder(MoeWeights weights)
    {
        private readonly MoeConfig _c = weights.Config;
        private readonly List<double[]>[] _keys = [.. Enumerable.Range(0, weights.Config.Layers).Select(_ => new List<double[]>())];
        private readonly List<double[]>[] _values = [.. Enumerable.Range(0, weights.Config.Layers).Select(_ => new List<double[]>())];

        public double[] Step(int token)
        {
            var (d, hd) = (_c.ModelDim, _c.HeadDim);
            var position = _keys[0].Count;
            var x = Enumerable.Range(0, d).Select(i => (double)weights.Embedding[(token * d) + i]).ToArray();
            for (var l = 0; l < _c.Layers; l++)
            {
                var w = weights.Layers[l];
                var h = Norm(x, w.AttentionNorm);
                var (q, k, v) = (Rope(MatVec(w.Query, h), position), Rope(MatVec(w.Key, h), position), MatVec(w.Value, h));
                _keys[l].Add(k);
                _values[l].Add(v);
                var mixed = new double[d];
                for (var head = 0; head < _c.Heads; head++)
                {
                    var scores = _keys[l].Select(key => Enumerable.Range(head * hd, hd).Sum(i => q[i] * key[i]) / Math.Sqrt(hd)).ToArray();
                    var p = Softmax(scores);
                    for (var t = 0; t < p.Length; t++)
                    {
                        for (var i = head * hd; i < (head + 1) * hd; i++)
                        {
                            mixed[i] += p[t] * _values[l][t][i];
                        }
                    }
                }

                x = Add(x, MatVec(w.Output, mixed));
                var routed = Norm(x, w.FfnNorm);
                var logits = MatVec(w.Router, routed);
                var top = logits.Select((value, index) => (value, index)).OrderByDescending(p => p.value).ThenBy(p => p.index).Take(_c.TopK).ToArray();
                var gates = Softmax([.. top.Select(t => t.value)]);
                for (var k2 = 0; k2 < top.Length; k2++)
                {
                    var e = weights.LoadExpert(l, top[k2].index);
                    var gate = MatVec(e.Gate.ToFloat32(), routed);
                    var up = MatVec(e.Up.ToFloat32(), routed);
                    var inner = gate.Select((g, i) => g / (1 + Math.Exp(-g)) * up[i]).ToArray();
                    x = Add(x, MatVec(e.Down.ToFloat32(), inner).Select(y => y * gates[k2]).ToArray());
                }
            }

            return MatVec(weights.LmHead, Norm(x, weights.FinalNorm));
        }

        private static double[] MatVec(float[] w, double[] x) =>
            [.. Enumerable.Range(0, w.Length / x.Length).Select(r => Enumerable.Range(0, x.Length).Sum(c => w[(r * x.Length) + c] * x[c]))];

        private double[] Norm(double[] x, float[] gain)
        {
            var scale = 1 / Math.Sqrt((x.Sum(v => v * v) / x.Length) + _c.NormEpsilon);
            return [.. x.Select((v, i) => v * scale * gain[i])];
        }

        private double[] Rope(double[] v, int position)
        {
            var (hd, half) = (_c.HeadDim, _c.HeadDim / 2);
            var r = v.ToArray();
            for (var head = 0; head < v.Length; head += hd)
            {
                for (var i = 0; i < half; i++)
                {
                    var angle = position * Math.Pow(_c.RopeTheta, -2.0 * i / hd);
                    var (a, b) = (v[head + i], v[head + i + half]);
                    r[head + i] = (a * Math.Cos(angle)) - (b * Math.Sin(angle));
                    r[head + i + half] = (b * Math.Cos(angle)) + (a * Math.Sin(angle));
                }
            }

            return r;
        }

        private static double[] Softmax(double[] v)
        {
            var max = v.Max();
            var e = v.Select(x => Math.Exp(x - max)).ToArray();
            var sum = e.Sum();
            return [.. e.Select(x => x / sum)];
        }

        private static double[] Add(double[] a, double[] b) => [.. a.Select((v, i) => v + b[i])];
    }
}
