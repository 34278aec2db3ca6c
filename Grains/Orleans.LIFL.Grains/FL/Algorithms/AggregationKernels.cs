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

    /// <summary>Updates one pass of <see cref="AccumulateMany"/> folds in at most: beyond four the memory streams compete.</summary>
    public const int FusedUpdates = 4;

    /// <summary>
    /// <paramref name="sum"/> += Σ weightsᵢ · updatesᵢ, folding up to <see cref="FusedUpdates"/> updates in each pass over
    /// the sum. One update at a time the sum is read and written once per update (three bytes of traffic per byte of
    /// update); four at a time, once per four, so the pass runs close to the speed of reading the updates alone.
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

        for (var first = 0; first < updates.Count; first += FusedUpdates)
        {
            switch (Math.Min(FusedUpdates, updates.Count - first))
            {
                case 1:
                    TensorPrimitives.MultiplyAdd(updates[first].Span, weights[first], sum, sum);
                    break;
                case 2:
                    Fold(sum, updates[first].Span, weights[first], updates[first + 1].Span, weights[first + 1], default, 0, default, 0);
                    break;
                case 3:
                    Fold(sum, updates[first].Span, weights[first], updates[first + 1].Span, weights[first + 1], updates[first + 2].Span, weights[first + 2], default, 0);
                    break;
                default:
                    Fold(sum, updates[first].Span, weights[first], updates[first + 1].Span, weights[first + 1],
                        updates[first + 2].Span, weights[first + 2], updates[first + 3].Span, weights[first + 3]);
                    break;
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
        if (Vector512.IsHardwareAccelerated)
        {
            var (va, vb, vc, vd) = (Vector512.Create(w0), Vector512.Create(w1), Vector512.Create(w2), Vector512.Create(w3));
            for (; i + (nuint)Vector512<float>.Count <= length; i += (nuint)Vector512<float>.Count)
            {
                var total = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref a, i), va, Vector512.LoadUnsafe(ref s, i));
                total = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref b, i), vb, total);
                total = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref c, i), vc, total);
                total = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref d, i), vd, total);
                total.StoreUnsafe(ref s, i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var (va, vb, vc, vd) = (Vector256.Create(w0), Vector256.Create(w1), Vector256.Create(w2), Vector256.Create(w3));
            for (; i + (nuint)Vector256<float>.Count <= length; i += (nuint)Vector256<float>.Count)
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
