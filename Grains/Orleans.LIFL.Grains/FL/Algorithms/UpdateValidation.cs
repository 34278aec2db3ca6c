namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>The checks an update passes before it is aggregated: one bad update would otherwise spoil the round.</summary>
public static class UpdateValidation
{
    /// <summary>
    /// Null when <paramref name="update"/> can be aggregated; otherwise its first problem, checking the shape, then that
    /// every value is finite, then (when <paramref name="maxNorm"/> is set) that its L2 norm is at most the bound.
    /// </summary>
    public static UpdateProblem? Check(ReadOnlySpan<float> update, int expectedLength, double? maxNorm)
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

        var index = AggregationKernels.FirstNonFinite(update);
        if (index >= 0)
        {
            return new(UpdateProblemKind.NonFinite, $"value at index {index} is {Describe(update[index])}");
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
