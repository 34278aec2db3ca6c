using System.Numerics.Tensors;

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

    /// <summary><paramref name="values"/> *= <paramref name="factor"/>.</summary>
    public static void Scale(Span<float> values, float factor)
    {
        RequireFinite(factor, nameof(factor));
        TensorPrimitives.Multiply(values, factor, values);
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
