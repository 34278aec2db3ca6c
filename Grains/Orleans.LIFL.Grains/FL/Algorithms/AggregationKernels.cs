using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// The vector kernels every aggregation step is built from. They work in place on caller-owned buffers (the updates
/// live in shared memory outside the GC heap) and never allocate.
/// </summary>
public static class AggregationKernels
{
    /// <summary>
    /// The kernels that reduce a vector work over blocks this long. Sums of squares are taken in float within a block
    /// and added up in double across blocks, so the float error stays that of a short sum however long the vector, at
    /// the speed of the float kernel; the finiteness scan skips a clean block in one vectorized test.
    /// </summary>
    internal const int BlockLength = 4096;

    /// <summary><paramref name="sum"/> += <paramref name="weight"/> · <paramref name="update"/>, in one pass.</summary>
    public static void Accumulate(Span<float> sum, ReadOnlySpan<float> update, float weight)
    {
        RequireSameLength(sum.Length, update.Length, nameof(update));
        RequireFinite(weight, nameof(weight));
        TensorPrimitives.MultiplyAdd(update, weight, sum, sum);
    }

    /// <summary>Updates one inner pass of <see cref="AccumulateMany"/> reads at once: beyond four the memory streams compete.</summary>
    public const int FusedUpdates = 4;

    /// <summary>
    /// The sum is folded this many floats at a time (256 KB, within a core's 1 MB L2 cache), every update into one
    /// stretch before the next: the sum's stretch stays in the cache between the passes of four. Measured with
    /// `lifl bench aggregate`: 16 KB stretches ran at 0.67 of the read probe, 256 KB at 0.79, 512 KB at 0.76.
    /// </summary>
    public const int FoldBlockLength = 65536;

    /// <summary>
    /// <paramref name="sum"/> += Σ weightsᵢ · updatesᵢ, reading each update once and the sum once, however many updates:
    /// stretch by stretch of the sum, up to <see cref="FusedUpdates"/> updates per inner pass while the stretch stays in
    /// the cache. One update at a time the sum is read and written once per update (three bytes of traffic per byte of
    /// update); k at a time once per k (1 + 2/k), so with many pending updates the fold runs near the speed of reading them.
    /// </summary>
    public static void AccumulateMany(Span<float> sum, IReadOnlyList<ReadOnlyMemory<float>> updates, ReadOnlySpan<float> weights)
    {
        ArgumentNullException.ThrowIfNull(updates);
        if (weights.Length != updates.Count)
        {
            throw new ArgumentException($"{updates.Count} updates need {updates.Count} weights, not {weights.Length}.", nameof(weights));
        }

        for (var i = 0; i < updates.Count; i++)
        {
            RequireSameLength(sum.Length, updates[i].Length, nameof(updates));
            RequireFinite(weights[i], nameof(weights));
        }

        if (updates.Count == 1)
        {
            TensorPrimitives.MultiplyAdd(updates[0].Span, weights[0], sum, sum);
            return;
        }

        for (var start = 0; start < sum.Length; start += FoldBlockLength)
        {
            var length = Math.Min(FoldBlockLength, sum.Length - start);
            var block = sum.Slice(start, length);
            for (var first = 0; first < updates.Count; first += FusedUpdates)
            {
                var count = Math.Min(FusedUpdates, updates.Count - first);
                var u0 = updates[first].Span.Slice(start, length);
                if (count == 1)
                {
                    TensorPrimitives.MultiplyAdd(u0, weights[first], block, block);
                    continue;
                }

                // Absent third and fourth updates are empty spans, which Fold reads as weight 0.
                var u2 = count > 2 ? updates[first + 2].Span.Slice(start, length) : default;
                var u3 = count > 3 ? updates[first + 3].Span.Slice(start, length) : default;
                Fold(block, u0, weights[first], updates[first + 1].Span.Slice(start, length), weights[first + 1],
                    u2, count > 2 ? weights[first + 2] : 0, u3, count > 3 ? weights[first + 3] : 0);
            }
        }
    }

    /// <summary>One pass: sum += w0·u0 + w1·u1 (+ w2·u2, + w3·u3 when they are given, i.e. not empty).</summary>
    private static void Fold(
        Span<float> sum, ReadOnlySpan<float> u0, float w0, ReadOnlySpan<float> u1, float w1, ReadOnlySpan<float> u2, float w2, ReadOnlySpan<float> u3, float w3)
    {
        // An absent update is read as the first one with weight 0: one loop body, no branch, the same streams.
        var three = !u2.IsEmpty;
        var four = !u3.IsEmpty;
        ref var s = ref MemoryMarshal.GetReference(sum);
        ref var a = ref MemoryMarshal.GetReference(u0);
        ref var b = ref MemoryMarshal.GetReference(u1);
        ref var c = ref three ? ref MemoryMarshal.GetReference(u2) : ref a;
        ref var d = ref four ? ref MemoryMarshal.GetReference(u3) : ref a;
        w2 = three ? w2 : 0;
        w3 = four ? w3 : 0;
        var length = (nuint)sum.Length;
        nuint i = 0;
        // 256-bit vectors: the fold reads memory at the speed of the 256-bit read probe, which on this project's
        // machine (AMD EPYC, AVX-512 split in two) beats the 512-bit one (21 against 19 GB/s).
        if (Vector256.IsHardwareAccelerated)
        {
            var (va, vb, vc, vd) = (Vector256.Create(w0), Vector256.Create(w1), Vector256.Create(w2), Vector256.Create(w3));
            var lanes = (nuint)Vector256<float>.Count;

            // A cache line of each stream per iteration, as two independent chains of multiply-adds.
            for (; i + (2 * lanes) <= length; i += 2 * lanes)
            {
                var low = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, i), va, Vector256.LoadUnsafe(ref s, i));
                var high = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, i + lanes), va, Vector256.LoadUnsafe(ref s, i + lanes));
                low = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref b, i), vb, low);
                high = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref b, i + lanes), vb, high);
                low = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref c, i), vc, low);
                high = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref c, i + lanes), vc, high);
                low = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref d, i), vd, low);
                high = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref d, i + lanes), vd, high);
                low.StoreUnsafe(ref s, i);
                high.StoreUnsafe(ref s, i + lanes);
            }

            for (; i + lanes <= length; i += lanes)
            {
                var total = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref a, i), va, Vector256.LoadUnsafe(ref s, i));
                total = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref b, i), vb, total);
                total = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref c, i), vc, total);
                total = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref d, i), vd, total);
                total.StoreUnsafe(ref s, i);
            }
        }

        for (var k = (int)i; k < sum.Length; k++)
        {
            sum[k] += (u0[k] * w0) + (u1[k] * w1) + (three ? u2[k] * w2 : 0) + (four ? u3[k] * w3 : 0);
        }
    }

    /// <summary><paramref name="values"/> *= <paramref name="factor"/>.</summary>
    public static void Scale(Span<float> values, float factor) => Scale(values, factor, values);

    /// <summary><paramref name="destination"/> = <paramref name="source"/> × <paramref name="factor"/>, in one pass.</summary>
    public static void Scale(ReadOnlySpan<float> source, float factor, Span<float> destination)
    {
        RequireFinite(factor, nameof(factor));
        TensorPrimitives.Multiply(source, factor, destination);
    }

    /// <summary>The Euclidean norm, accumulated in double (see <see cref="BlockLength"/>); NaN or infinity when a value is.</summary>
    public static double L2Norm(ReadOnlySpan<float> values) => Math.Sqrt(SumOfSquares(values));

    /// <summary>The index of the first NaN or ±infinity, or -1 when every value is finite.</summary>
    public static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        // The vectorized all-finite test skips clean blocks; only a block known to hold a bad value is scanned one by one.
        for (var start = 0; start < values.Length; start += BlockLength)
        {
            var block = values.Slice(start, Math.Min(BlockLength, values.Length - start));
            if (TensorPrimitives.IsFiniteAll(block))
            {
                continue;
            }

            for (var i = 0; i < block.Length; i++)
            {
                if (!float.IsFinite(block[i]))
                {
                    return start + i;
                }
            }
        }

        return -1;
    }

    /// <summary>Σ values², accumulated in double.</summary>
    internal static double SumOfSquares(ReadOnlySpan<float> values)
    {
        double total = 0;
        for (var start = 0; start < values.Length; start += BlockLength)
        {
            var block = values.Slice(start, Math.Min(BlockLength, values.Length - start));
            var sum = TensorPrimitives.SumOfSquares(block);
            total += float.IsFinite(sum) ? sum : SumOfSquaresInDouble(block);
        }

        return total;
    }

    /// <summary>Σ (a − b)², accumulated in double; the caller guarantees equal lengths.</summary>
    internal static double SquaredDistance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double total = 0;
        for (var start = 0; start < a.Length; start += BlockLength)
        {
            var length = Math.Min(BlockLength, a.Length - start);
            var blockA = a.Slice(start, length);
            var blockB = b.Slice(start, length);

            // The fused distance kernel needs no buffer for the differences; squaring its float root costs one rounding.
            var distance = TensorPrimitives.Distance(blockA, blockB);
            total += float.IsFinite(distance) ? (double)distance * distance : SquaredDistanceInDouble(blockA, blockB);
        }

        return total;
    }

    // The slow paths run only when a float square overflows: finite values above ~1.8e19 do, in double they do not,
    // so only a NaN or an infinite input yields a non-finite result.
    private static double SumOfSquaresInDouble(ReadOnlySpan<float> values)
    {
        double total = 0;
        foreach (var value in values)
        {
            total += (double)value * value;
        }

        return total;
    }

    private static double SquaredDistanceInDouble(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double total = 0;
        for (var i = 0; i < a.Length; i++)
        {
            var difference = (double)a[i] - b[i];
            total += difference * difference;
        }

        return total;
    }

    internal static void RequireSameLength(int expected, int actual, string parameterName)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"The {parameterName} has {actual:N0} values where {expected:N0} are expected.", parameterName);
        }
    }

    private static void RequireFinite(float value, string parameterName)
    {
        if (!float.IsFinite(value))
        {
            throw new ArgumentOutOfRangeException(parameterName, value, $"The {parameterName} must be a finite number, not {value}.");
        }
    }
}
