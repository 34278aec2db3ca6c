using System.Numerics.Tensors;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// Byzantine-robust aggregation rules, which bound the influence of a minority of arbitrary (malicious or broken)
/// updates. Each needs every update of the round at once: an order statistic or a distance between updates cannot be
/// assembled from partial sums, so unlike the weighted mean these rules cannot be split across an aggregation
/// hierarchy, and the platform runs them at the top aggregator only. They are unweighted, as in their papers: the
/// example counts are ignored, since a count is only a claim and a large one would buy a Byzantine client influence.
/// The updates are expected to have passed <see cref="UpdateValidation"/>, so every value is finite.
/// </summary>
public static class RobustAggregation
{
    /// <summary>
    /// Coordinate-wise rules read this many coordinates of every update into a transposed scratch at once: each update
    /// is read sequentially, a cache line at a time, and each coordinate's values are then contiguous for sorting.
    /// </summary>
    private const int CoordinateBlockLength = 64;

    /// <summary>Pairwise distances are accumulated over blocks this long, so a block of every update stays in cache for all pairs.</summary>
    private const int DistanceBlockLength = 1024;

    private delegate float SortedCoordinateRule(ReadOnlySpan<float> sorted);

    /// <summary>
    /// Each coordinate of <paramref name="result"/> is the median of that coordinate over the updates (Yin et al. 2018);
    /// for an even count, the mean of the two middle values.
    /// </summary>
    public static void CoordinateWiseMedian(IReadOnlyList<ReadOnlyMemory<float>> updates, Span<float> result)
    {
        RequireUpdates(updates, result.Length);
        ApplyToSortedCoordinates(updates, result, static sorted =>
        {
            var middle = sorted.Length / 2;
            return sorted.Length % 2 == 1 ? sorted[middle] : (float)(((double)sorted[middle - 1] + sorted[middle]) / 2);
        });
    }

    /// <summary>
    /// Each coordinate of <paramref name="result"/> is the mean of that coordinate over the updates after dropping its
    /// k = ⌊<paramref name="trimFraction"/>·n⌋ smallest and k largest values (Yin et al. 2018).
    /// </summary>
    public static void TrimmedMean(IReadOnlyList<ReadOnlyMemory<float>> updates, double trimFraction, Span<float> result)
    {
        RequireUpdates(updates, result.Length);
        if (!(trimFraction >= 0 && trimFraction < 0.5))
        {
            throw new ArgumentOutOfRangeException(nameof(trimFraction), trimFraction, $"The trim fraction must be at least 0 and below 0.5, not {trimFraction}.");
        }

        // k ≤ trimFraction·n < n/2, so at least one value is kept (the rounded product stays below n/2 too).
        var trimmed = (int)Math.Floor(trimFraction * updates.Count);
        var kept = updates.Count - 2 * trimmed;

        ApplyToSortedCoordinates(updates, result, sorted =>
        {
            double sum = 0;
            foreach (var value in sorted.Slice(trimmed, kept))
            {
                sum += value;
            }

            return (float)(sum / kept);
        });
    }

    /// <summary>
    /// Multi-Krum (Blanchard et al. 2017): scores each update by the sum of its squared Euclidean distances to its
    /// n − f − 2 nearest other updates, selects the <paramref name="selected"/> updates with the lowest scores (ties to
    /// the lower index), and writes their mean to <paramref name="result"/>.
    /// </summary>
    /// <param name="byzantine">f, how many updates may be Byzantine; Krum needs n ≥ 2f + 3.</param>
    /// <returns>The indices of the selected updates, ascending.</returns>
    public static int[] MultiKrum(IReadOnlyList<ReadOnlyMemory<float>> updates, int byzantine, int selected, Span<float> result)
    {
        RequireUpdates(updates, result.Length);
        ArgumentOutOfRangeException.ThrowIfNegative(byzantine);
        var count = updates.Count;
        if (count < 2 * byzantine + 3)
        {
            throw new ArgumentException(
                $"Multi-Krum tolerating {byzantine} Byzantine updates needs at least 2f + 3 = {2 * byzantine + 3} updates; there are {count}.", nameof(updates));
        }

        if (selected < 1 || selected > count)
        {
            throw new ArgumentOutOfRangeException(nameof(selected), selected, $"Multi-Krum selects from 1 to all {count} updates, not {selected}.");
        }

        var scores = KrumScores(updates, byzantine);
        var chosen = Enumerable.Range(0, count).OrderBy(i => scores[i]).ThenBy(i => i).Take(selected).Order().ToArray();

        result.Clear();
        foreach (var index in chosen)
        {
            AggregationKernels.Accumulate(result, updates[index].Span, 1);
        }

        AggregationKernels.Scale(result, 1f / selected);
        return chosen;
    }

    /// <summary>Each update's Krum score: the sum of its squared distances to its n − f − 2 nearest other updates.</summary>
    internal static double[] KrumScores(IReadOnlyList<ReadOnlyMemory<float>> updates, int byzantine)
    {
        var count = updates.Count;
        var distances = PairwiseSquaredDistances(updates);
        var nearest = count - byzantine - 2;
        var scores = new double[count];
        var toOthers = new double[count - 1];
        for (var i = 0; i < count; i++)
        {
            var row = distances.AsSpan(i * count, count);
            row[..i].CopyTo(toOthers);
            row[(i + 1)..].CopyTo(toOthers.AsSpan(i));
            Array.Sort(toOthers);
            scores[i] = TensorPrimitives.Sum<double>(toOthers.AsSpan(0, nearest));
        }

        return scores;
    }

    /// <summary>The n × n matrix of squared distances, row-major, each of the n(n − 1)/2 pairs computed once.</summary>
    private static double[] PairwiseSquaredDistances(IReadOnlyList<ReadOnlyMemory<float>> updates)
    {
        var count = updates.Count;
        var length = updates[0].Length;
        var distances = new double[count * count];
        for (var start = 0; start < length; start += DistanceBlockLength)
        {
            var blockLength = Math.Min(DistanceBlockLength, length - start);
            for (var i = 0; i < count; i++)
            {
                var first = updates[i].Span.Slice(start, blockLength);
                for (var j = i + 1; j < count; j++)
                {
                    distances[i * count + j] += AggregationKernels.SquaredDistance(first, updates[j].Span.Slice(start, blockLength));
                }
            }
        }

        for (var i = 0; i < count; i++)
        {
            for (var j = i + 1; j < count; j++)
            {
                distances[j * count + i] = distances[i * count + j];
            }
        }

        return distances;
    }

    /// <summary>Sorts each coordinate's values over the updates, block by block in one reused scratch, and reduces them with <paramref name="rule"/>.</summary>
    private static void ApplyToSortedCoordinates(IReadOnlyList<ReadOnlyMemory<float>> updates, Span<float> result, SortedCoordinateRule rule)
    {
        var count = updates.Count;
        var transposed = new float[count * Math.Min(CoordinateBlockLength, result.Length)];
        for (var start = 0; start < result.Length; start += CoordinateBlockLength)
        {
            var blockLength = Math.Min(CoordinateBlockLength, result.Length - start);
            for (var i = 0; i < count; i++)
            {
                var block = updates[i].Span.Slice(start, blockLength);
                for (var c = 0; c < blockLength; c++)
                {
                    transposed[c * count + i] = block[c];
                }
            }

            for (var c = 0; c < blockLength; c++)
            {
                var values = transposed.AsSpan(c * count, count);
                values.Sort();
                result[start + c] = rule(values);
            }
        }
    }

    private static void RequireUpdates(IReadOnlyList<ReadOnlyMemory<float>> updates, int length)
    {
        ArgumentNullException.ThrowIfNull(updates);
        if (updates.Count == 0)
        {
            throw new ArgumentException("There are no updates to aggregate.", nameof(updates));
        }

        for (var i = 0; i < updates.Count; i++)
        {
            if (updates[i].Length != length)
            {
                throw new ArgumentException($"Update {i} has {updates[i].Length:N0} values; the result has {length:N0}.", nameof(updates));
            }
        }
    }
}
