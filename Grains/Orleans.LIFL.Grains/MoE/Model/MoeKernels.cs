using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Orleans.LIFL.Grains.MoE.Model;

/// <summary>
/// The decoder's kernels, vectorized and deterministic by construction: every reduction runs in one fixed order
/// (eight lanes of <see cref="Vector256{T}"/>, then the lanes in a fixed tree, then the scalar tail), multiplies and
/// adds stay separate (no fused multiply-add, whose rounding differs from a multiply then an add), and the only
/// transcendental, exp, is computed here in float arithmetic rather than by the platform's libm. So the same inputs
/// give bit-identical outputs on any silo, whatever its vector hardware: <see cref="Vector256{T}"/> falls back to the
/// same IEEE operations in software where AVX is missing.
/// The loops are compiled fully optimized on first use (<see cref="MethodImplOptions.AggressiveOptimization"/>) rather than
/// tiered: a silo that takes over sessions after a failure would otherwise spend the failover recompiling its hot kernels
/// (instrumented, then final code) on the cores the resumed decoding needs.
/// </summary>
public static class MoeKernels
{
    private const int Lanes = 8;

    /// <summary>Σ a[i]·b[i] in the fixed order described on the class.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
        {
            throw new ArgumentException($"Dot of {a.Length} and {b.Length} values.", nameof(b));
        }

        return Dot<float, Float32Values>(a, b);
    }

    /// <summary>y = W·x for a row-major W of y.Length rows and x.Length columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MatVec(ReadOnlySpan<float> weights, ReadOnlySpan<float> x, Span<float> y) =>
        MatVec<float, Float32Values>(weights, x, y);

    /// <summary>
    /// y = W·x for a row-major W of bfloat16 values (their bits, as a safetensors BF16 tensor stores them): each weight
    /// is widened to the float32 it stands for exactly, and the products and sums are those of
    /// <see cref="MatVec(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/> in the same order, so the result is bit
    /// for bit that of the widened matrix — at half the bytes read per row, which is what a matrix-vector product
    /// streaming its weights from memory waits for.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MatVec(ReadOnlySpan<ushort> bfloat16Weights, ReadOnlySpan<float> x, Span<float> y) =>
        MatVec<ushort, BFloat16Values>(bfloat16Weights, x, y);

    /// <summary>The float32 a bfloat16 stands for (exact: its bits are the float's upper half).</summary>
    public static float Widen(ushort bfloat16) => BitConverter.UInt32BitsToSingle((uint)bfloat16 << 16);

    /// <summary>The bfloat16 nearest <paramref name="value"/> (ties to even; a NaN stays a NaN).</summary>
    public static ushort Narrow(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x0040);
        }

        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MatVec<T, TValues>(ReadOnlySpan<T> weights, ReadOnlySpan<float> x, Span<float> y)
        where TValues : IStoredValues<T>
    {
        if (weights.Length != (long)x.Length * y.Length)
        {
            throw new ArgumentException($"A {weights.Length}-value matrix is not {y.Length} × {x.Length}.", nameof(weights));
        }

        // Four rows at a time, each with its own accumulator: the same operations in the same order as one Dot per row
        // (so the same bits), but four independent chains of adds keep the vector units busy and each load of x serves
        // four rows.
        var n = x.Length;
        var row = 0;
        for (; row <= y.Length - 4; row += 4)
        {
            DotFour<T, TValues>(weights.Slice(row * n, 4 * n), x, y.Slice(row, 4));
        }

        for (; row < y.Length; row++)
        {
            y[row] = Dot<T, TValues>(weights.Slice(row * n, n), x);
        }
    }

    /// <summary>Σ a[i]·b[i] (a's values as float32) in the fixed order described on the class.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot<T, TValues>(ReadOnlySpan<T> a, ReadOnlySpan<float> b)
        where TValues : IStoredValues<T>
    {
        ref var w = ref MemoryMarshal.GetReference(a);
        ref var v = ref MemoryMarshal.GetReference(b);
        var acc = Vector256<float>.Zero;
        var i = 0;
        for (; i <= a.Length - Lanes; i += Lanes)
        {
            acc += TValues.Load(ref w, (nuint)i) * Vector256.LoadUnsafe(ref v, (nuint)i);
        }

        var sum = Reduce(acc);
        for (; i < a.Length; i++)
        {
            sum += TValues.Value(a[i]) * b[i];
        }

        return sum;
    }

    /// <summary>y[r] = Dot(row r of <paramref name="rows"/>, x) for four consecutive rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotFour<T, TValues>(ReadOnlySpan<T> rows, ReadOnlySpan<float> x, Span<float> y)
        where TValues : IStoredValues<T>
    {
        var n = x.Length;
        ref var w = ref MemoryMarshal.GetReference(rows);
        ref var v = ref MemoryMarshal.GetReference(x);
        var (a0, a1, a2, a3) = (Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero);
        var i = 0;
        for (; i <= n - Lanes; i += Lanes)
        {
            var xs = Vector256.LoadUnsafe(ref v, (nuint)i);
            a0 += TValues.Load(ref w, (nuint)i) * xs;
            a1 += TValues.Load(ref w, (nuint)(n + i)) * xs;
            a2 += TValues.Load(ref w, (nuint)((2 * n) + i)) * xs;
            a3 += TValues.Load(ref w, (nuint)((3 * n) + i)) * xs;
        }

        var (s0, s1, s2, s3) = (Reduce(a0), Reduce(a1), Reduce(a2), Reduce(a3));
        for (; i < n; i++)
        {
            s0 += TValues.Value(rows[i]) * x[i];
            s1 += TValues.Value(rows[n + i]) * x[i];
            s2 += TValues.Value(rows[(2 * n) + i]) * x[i];
            s3 += TValues.Value(rows[(3 * n) + i]) * x[i];
        }

        y[0] = s0;
        y[1] = s1;
        y[2] = s2;
        y[3] = s3;
    }

    /// <summary>How weights stored as <typeparamref name="T"/> are read as float32 (exactly), eight at a time or one.</summary>
    private interface IStoredValues<T>
    {
        static abstract Vector256<float> Load(ref T values, nuint offset);

        static abstract float Value(T value);
    }

    private readonly struct Float32Values : IStoredValues<float>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(ref float values, nuint offset) => Vector256.LoadUnsafe(ref values, offset);

        public static float Value(float value) => value;
    }

    private readonly struct BFloat16Values : IStoredValues<ushort>
    {
        /// <summary>Eight bfloat16 values widened to float32: zero-extended and shifted into the upper half (exact).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(ref ushort values, nuint offset)
        {
            var half = Vector128.LoadUnsafe(ref values, offset);
            var wide = Avx2.IsSupported
                ? Avx2.ConvertToVector256Int32(half).AsUInt32()
                : Vector256.Create(Vector128.WidenLower(half), Vector128.WidenUpper(half));
            return Vector256.ShiftLeft(wide, 16).AsSingle();
        }

        public static float Value(ushort value) => Widen(value);
    }

    /// <summary>y[i] += a · x[i], element by element (vectorized: each element sees the same two operations).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddScaled(Span<float> y, float a, ReadOnlySpan<float> x)
    {
        if (x.Length != y.Length)
        {
            throw new ArgumentException($"AddScaled of {x.Length} values into {y.Length}.", nameof(x));
        }

        var scale = Vector256.Create(a);
        var i = 0;
        for (; i <= y.Length - Lanes; i += Lanes)
        {
            var sum = Vector256.Create(y.Slice(i, Lanes)) + (scale * Vector256.Create(x.Slice(i, Lanes)));
            sum.CopyTo(y.Slice(i, Lanes));
        }

        for (; i < y.Length; i++)
        {
            y[i] += a * x[i];
        }
    }

    /// <summary>
    /// One attention head's scores: scores[t] = <see cref="Dot(ReadOnlySpan{float}, ReadOnlySpan{float})"/>(q, the head's
    /// key at position t) · scale, the key being <paramref name="keys"/>[t·stride + offset ..] (a cache holding all heads
    /// of a position together). The same operations as one Dot per position, without a call and its checks for each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, int stride, int offset, float scale, Span<float> scores)
    {
        CheckHeads(q.Length, keys.Length, stride, offset, scores.Length);
        for (var t = 0; t < scores.Length; t++)
        {
            scores[t] = Dot<float, Float32Values>(keys.Slice((t * stride) + offset, q.Length), q) * scale;
        }
    }

    /// <summary>
    /// One attention head's output: output += Σₜ weights[t] · (the head's value at position t), the value being
    /// <paramref name="values"/>[t·stride + offset ..] — each element the operations of
    /// <see cref="AddScaled(Span{float}, float, ReadOnlySpan{float})"/> for t = 0, 1, … in turn (so the same bits), but
    /// accumulated eight lanes at a time in a register across the positions instead of through memory for each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WeightedSum(ReadOnlySpan<float> weights, ReadOnlySpan<float> values, int stride, int offset, Span<float> output)
    {
        CheckHeads(output.Length, values.Length, stride, offset, weights.Length);
        ref var v = ref MemoryMarshal.GetReference(values);
        var i = 0;
        for (; i <= output.Length - Lanes; i += Lanes)
        {
            var acc = Vector256.Create(output.Slice(i, Lanes));
            for (var t = 0; t < weights.Length; t++)
            {
                acc += Vector256.Create(weights[t]) * Vector256.LoadUnsafe(ref v, (nuint)((t * stride) + offset + i));
            }

            acc.CopyTo(output.Slice(i, Lanes));
        }

        for (; i < output.Length; i++)
        {
            var sum = output[i];
            for (var t = 0; t < weights.Length; t++)
            {
                sum += weights[t] * values[(t * stride) + offset + i];
            }

            output[i] = sum;
        }
    }

    private static void CheckHeads(int headDim, int cacheLength, int stride, int offset, int positions)
    {
        if (offset < 0 || offset + headDim > stride || (long)positions * stride > cacheLength)
        {
            throw new ArgumentException($"{positions} positions of a {headDim}-value head at offset {offset} in rows of {stride} do not fit {cacheLength} cached values.");
        }
    }

    /// <summary>y = x / rms(x) ⊙ gain, rms(x) = sqrt(mean(x²) + ε).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> gain, float epsilon, Span<float> y)
    {
        var scale = 1f / MathF.Sqrt((Dot(x, x) / x.Length) + epsilon);
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = x[i] * scale * gain[i];
        }
    }

    /// <summary>
    /// Rotary positions (RoFormer, as Llama and Mixtral apply them): each head's pairs (i, i + headDim/2) rotated by
    /// position × θ^(−2i/headDim), from the precomputed <paramref name="cos"/> and <paramref name="sin"/> of the position.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rope(Span<float> vector, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        var half = headDim / 2;
        for (var head = 0; head < vector.Length; head += headDim)
        {
            var values = vector.Slice(head, headDim);
            for (var i = 0; i < half; i++)
            {
                var (a, b) = (values[i], values[i + half]);
                values[i] = (a * cos[i]) - (b * sin[i]);
                values[i + half] = (b * cos[i]) + (a * sin[i]);
            }
        }
    }

    /// <summary>The cosines and sines of rotary positions for <paramref name="position"/>, computed in double and rounded once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RopeTables(int position, int headDim, double theta, Span<float> cos, Span<float> sin)
    {
        var half = headDim / 2;
        for (var i = 0; i < half; i++)
        {
            var angle = position * Math.Pow(theta, -2.0 * i / headDim);
            cos[i] = (float)Math.Cos(angle);
            sin[i] = (float)Math.Sin(angle);
        }
    }

    /// <summary>In place: exp(v − max) / Σ, the sum taken left to right.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Softmax(Span<float> values)
    {
        var max = float.NegativeInfinity;
        foreach (var v in values)
        {
            max = MathF.Max(max, v);
        }

        var sum = 0f;
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = Exp(values[i] - max);
            sum += values[i];
        }

        var inverse = 1f / sum;
        for (var i = 0; i < values.Length; i++)
        {
            values[i] *= inverse;
        }
    }

    /// <summary>SiLU, x·σ(x) = x / (1 + e^−x).</summary>
    public static float Silu(float x) => x / (1f + Exp(-x));

    /// <summary>
    /// e^x in float arithmetic: x = k·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 split in two for an exact product), e^r by a
    /// degree-7 polynomial (Horner), and 2^k set in the exponent bits. Relative error about 10⁻⁷ for normal results;
    /// 0 below −87.33 (no subnormals), +∞ above 88.3 (2·10³⁸), NaN for NaN.
    /// </summary>
    public static float Exp(float x)
    {
        if (float.IsNaN(x))
        {
            return x;
        }

        if (x > 88.3f)
        {
            return float.PositiveInfinity;
        }

        if (x < -87.33f)
        {
            return 0f;
        }

        const float Log2E = 1.44269504f;
        const float Ln2High = 0.693145752f; // ln 2's leading bits: k·Ln2High is exact for |k| ≤ 128
        const float Ln2Low = 1.42860677e-6f;
        var k = MathF.Round(x * Log2E);
        var r = (x - (k * Ln2High)) - (k * Ln2Low);
        var p = 1f / 5040;
        p = (p * r) + (1f / 720);
        p = (p * r) + (1f / 120);
        p = (p * r) + (1f / 24);
        p = (p * r) + (1f / 6);
        p = (p * r) + 0.5f;
        p = (p * r) + 1f;
        p = (p * r) + 1f;
        return p * BitConverter.Int32BitsToSingle(((int)k + 127) << 23);
    }

    /// <summary>
    /// The <paramref name="k"/> largest of <paramref name="values"/> (ties: the lower index first), in descending
    /// order, into <paramref name="indices"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TopK(ReadOnlySpan<float> values, Span<int> indices)
    {
        var k = indices.Length;
        if (k < 1 || k > values.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(indices), k, $"top-k of {values.Length} values needs 1 ≤ k ≤ {values.Length}.");
        }

        for (var slot = 0; slot < k; slot++)
        {
            var best = -1;
            for (var i = 0; i < values.Length; i++)
            {
                if (indices[..slot].Contains(i))
                {
                    continue;
                }

                if (best < 0 || values[i] > values[best])
                {
                    best = i;
                }
            }

            indices[slot] = best;
        }
    }

    /// <summary>The index of the largest value (ties: the lowest index).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduce(Vector256<float> v)
    {
        // A fixed tree: (0+4, 1+5, 2+6, 3+7), then pairs, then the last two.
        var quad = v.GetLower() + v.GetUpper();
        return (quad[0] + quad[2]) + (quad[1] + quad[3]);
    }
}
