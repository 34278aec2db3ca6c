using Orleans.LIFL.Grains.FL.Algorithms;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Algorithms;

/// <summary>The coordinate-wise rules against sorting each coordinate; Multi-Krum against a naive computation of its scores.</summary>
public sealed class RobustAggregationTests
{
    /// <summary>The median of each coordinate is its middle value, or the mean of the two middle values for an even count.</summary>
    [Theory]
    [InlineData(1, 7)]
    [InlineData(2, 1)]
    [InlineData(5, 1000)]
    [InlineData(6, 100_003)]
    [InlineData(11, 1000)]
    public void Median_matches_sorting_each_coordinate(int count, int length)
    {
        var updates = RandomUpdates(new Random(count * 1000 + length), count, length);
        var result = new float[length];

        RobustAggregation.CoordinateWiseMedian(updates, result);

        var expected = new double[length];
        for (var p = 0; p < length; p++)
        {
            var sorted = SortedCoordinate(updates, p);
            expected[p] = count % 2 == 1 ? sorted[count / 2] : (sorted[count / 2 - 1] + sorted[count / 2]) / 2;
        }

        Reference.AssertClose(expected, result, 1e-7);
    }

    /// <summary>The trimmed mean of each coordinate drops ⌊βn⌋ values from each end of its sorted values and averages the rest.</summary>
    [Theory]
    [InlineData(4, 0.0, 1000)]
    [InlineData(5, 0.2, 100_003)]
    [InlineData(10, 0.25, 7)]
    [InlineData(3, 0.49, 1000)]
    [InlineData(1, 0.4, 1)]
    public void Trimmed_mean_matches_sorting_each_coordinate(int count, double trimFraction, int length)
    {
        var updates = RandomUpdates(new Random(count * 1000 + length), count, length);
        var result = new float[length];

        RobustAggregation.TrimmedMean(updates, trimFraction, result);

        var trimmed = (int)Math.Floor(trimFraction * count);
        var expected = new double[length];
        for (var p = 0; p < length; p++)
        {
            expected[p] = SortedCoordinate(updates, p)[trimmed..(count - trimmed)].Average();
        }

        Reference.AssertClose(expected, result, 1e-7);
    }

    /// <summary>With f updates far from the honest ones, Multi-Krum selects only honest updates and averages them.</summary>
    [Fact]
    public void Multi_krum_selects_the_honest_updates_when_outliers_are_far()
    {
        const int Length = 1000, Byzantine = 2, Selected = 5;
        var random = new Random(11);
        var center = Reference.RandomVector(random, Length);
        int[] outliers = [0, 5];
        var updates = Enumerable.Range(0, 10).Select(i =>
        {
            var noise = Reference.RandomVector(random, Length, scale: 0.1);
            for (var p = 0; p < Length; p++)
            {
                noise[p] += outliers.Contains(i) ? 100 : center[p];
            }

            return (ReadOnlyMemory<float>)noise;
        }).ToArray();
        var result = new float[Length];

        var chosen = RobustAggregation.MultiKrum(updates, Byzantine, Selected, result);

        Assert.Equal(Selected, chosen.Length);
        Assert.Empty(chosen.Intersect(outliers));
        Assert.Equal(chosen.Order(), chosen);
        var expected = new double[Length];
        for (var p = 0; p < Length; p++)
        {
            expected[p] = chosen.Average(i => (double)updates[i].Span[p]);
        }

        Reference.AssertClose(expected, result, 1e-6);
    }

    /// <summary>Krum scores equal the naive sum over each update's n − f − 2 nearest others, and Multi-Krum picks the lowest.</summary>
    [Theory]
    [InlineData(3, 0, 1, 7)]
    [InlineData(7, 2, 3, 1000)]
    [InlineData(12, 3, 12, 5000)]
    [InlineData(20, 4, 1, 1)]
    public void Multi_krum_scores_and_selection_match_a_naive_computation(int count, int byzantine, int selected, int length)
    {
        var updates = RandomUpdates(new Random(count * 100 + byzantine), count, length, spread: true);

        var naiveScores = new double[count];
        for (var i = 0; i < count; i++)
        {
            var distances = new List<double>();
            for (var j = 0; j < count; j++)
            {
                if (j != i)
                {
                    double squared = 0;
                    for (var p = 0; p < length; p++)
                    {
                        var difference = (double)updates[i].Span[p] - updates[j].Span[p];
                        squared += difference * difference;
                    }

                    distances.Add(squared);
                }
            }

            naiveScores[i] = distances.Order().Take(count - byzantine - 2).Sum();
        }

        var scores = RobustAggregation.KrumScores(updates, byzantine);
        for (var i = 0; i < count; i++)
        {
            Assert.Equal(naiveScores[i], scores[i], naiveScores[i] * 1e-6);
        }

        var expectedChoice = Enumerable.Range(0, count).OrderBy(i => naiveScores[i]).Take(selected).Order().ToArray();
        Assert.Equal(expectedChoice, RobustAggregation.MultiKrum(updates, byzantine, selected, new float[length]));
    }

    /// <summary>Updates with equal scores are selected by lower index.</summary>
    [Fact]
    public void Multi_krum_breaks_ties_by_lower_index()
    {
        var updates = Enumerable.Range(0, 6).Select(_ => (ReadOnlyMemory<float>)new float[] { 1, 2, 3 }).ToArray();
        var result = new float[3];

        Assert.Equal([0, 1, 2], RobustAggregation.MultiKrum(updates, 1, 3, result));
        Assert.Equal([1f, 2f, 3f], result);
    }

    /// <summary>Too few updates for f, a selection out of range, no updates, a wrong length or a bad trim fraction are refused with the detail.</summary>
    [Fact]
    public void Bad_arguments_are_refused_with_the_detail()
    {
        var six = RandomUpdates(new Random(1), 6, 4);

        var tooFew = Assert.Throws<ArgumentException>(() => RobustAggregation.MultiKrum(six, 2, 1, new float[4]));
        Assert.Contains("Multi-Krum tolerating 2 Byzantine updates needs at least 2f + 3 = 7 updates; there are 6", tooFew.Message);
        Assert.Contains("not 0", Assert.Throws<ArgumentOutOfRangeException>(() => RobustAggregation.MultiKrum(six, 1, 0, new float[4])).Message);
        Assert.Contains("Multi-Krum selects from 1 to all 6 updates, not 7",
            Assert.Throws<ArgumentOutOfRangeException>(() => RobustAggregation.MultiKrum(six, 1, 7, new float[4])).Message);
        Assert.Equal("byzantine", Assert.Throws<ArgumentOutOfRangeException>(() => RobustAggregation.MultiKrum(six, -1, 1, new float[4])).ParamName);

        Assert.Contains("There are no updates to aggregate",
            Assert.Throws<ArgumentException>(() => RobustAggregation.CoordinateWiseMedian([], new float[4])).Message);
        ReadOnlyMemory<float>[] uneven = [new float[4], new float[4], new float[5]];
        Assert.Contains("Update 2 has 5 values; the result has 4",
            Assert.Throws<ArgumentException>(() => RobustAggregation.TrimmedMean(uneven, 0.1, new float[4])).Message);
        Assert.Contains("The trim fraction must be at least 0 and below 0.5, not 0.5",
            Assert.Throws<ArgumentOutOfRangeException>(() => RobustAggregation.TrimmedMean(six, 0.5, new float[4])).Message);
        Assert.Contains("not -0.1",
            Assert.Throws<ArgumentOutOfRangeException>(() => RobustAggregation.TrimmedMean(six, -0.1, new float[4])).Message);
    }

    /// <param name="spread">Scale each update differently, so the Krum scores are far apart and the selection is unambiguous.</param>
    private static ReadOnlyMemory<float>[] RandomUpdates(Random random, int count, int length, bool spread = false) =>
        Enumerable.Range(0, count).Select(i => (ReadOnlyMemory<float>)Reference.RandomVector(random, length, spread ? 1 + i * 0.37 : 1)).ToArray();

    private static double[] SortedCoordinate(IReadOnlyList<ReadOnlyMemory<float>> updates, int coordinate) =>
        updates.Select(update => (double)update.Span[coordinate]).Order().ToArray();
}
