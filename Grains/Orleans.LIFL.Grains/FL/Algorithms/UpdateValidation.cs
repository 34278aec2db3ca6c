using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>The checks an update passes before it is aggregated: one bad update would otherwise spoil the round.</summary>
public static class UpdateValidation
{
    /// <summary>Floats checked, then hashed, at a time (64 KiB: well within L2).</summary>
    private const int ChecksumStretch = 16_384;

    /// <summary>
    /// Null when <paramref name="update"/> can be aggregated; otherwise its first problem, checking the shape, then that
    /// every value is finite, then (when <paramref name="maxNorm"/> is set) that its L2 norm is at most the bound. With
    /// <paramref name="checksum"/>, each stretch of the update is appended to it right after its finiteness check, while the
    /// stretch is in cache: the checksum then costs no second read of the update from memory.
    /// </summary>
    public static UpdateProblem? Check(ReadOnlySpan<float> update, int expectedLength, double? maxNorm, XxHash3? checksum = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(expectedLength);
        if (maxNorm is double bound && !(bound > 0 && double.IsFinite(bound)))
        {
            throw new ArgumentOutOfRangeException(nameof(maxNorm), bound, $"The norm bound must be positive and finite, not {bound}.");
        }

        if (update.Length != expectedLength)
        {
            return new(UpdateProblemKind.WrongShape, $"the update has {update.Length:N0} values; the model has {expectedLength:N0}");
        }

        for (var start = 0; start < update.Length; start += ChecksumStretch)
        {
            var stretch = update.Slice(start, Math.Min(ChecksumStretch, update.Length - start));
            var index = AggregationKernels.FirstNonFinite(stretch);
            if (index >= 0)
            {
                return new(UpdateProblemKind.NonFinite, $"value at index {start + index} is {Describe(stretch[index])}");
            }

            checksum?.Append(MemoryMarshal.AsBytes(stretch));
        }

        if (maxNorm is double limit)
        {
            var norm = AggregationKernels.L2Norm(update);
            if (norm > limit)
            {
                return new(UpdateProblemKind.NormTooLarge, $"the update's L2 norm {DescribeAbove(norm, limit)} exceeds the job's bound {limit}");
            }
        }

        return null;
    }

    private static string Describe(float value) => float.IsNaN(value) ? "NaN" : value > 0 ? "+Infinity" : "-Infinity";

    /// <summary>Six significant digits read well, unless they round a norm just above the bound down to the bound itself.</summary>
    private static string DescribeAbove(double norm, double bound)
    {
        var brief = norm.ToString("G6");
        return double.Parse(brief) > bound ? brief : norm.ToString("R");
    }
}
