using Orleans.LIFL.Grains.FL.Algorithms;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Algorithms;

/// <summary>The vector kernels against plain double-precision loops.</summary>
public sealed class AggregationKernelsTests
{
    /// <summary>Accumulate adds weight × update to every value of the sum.</summary>
    [Theory]
    [MemberData(nameof(Reference.Lengths), MemberType = typeof(Reference))]
    public void Accumulate_adds_the_weighted_update(int length)
    {
        var random = new Random(length);
        var sum = Reference.RandomVector(random, length, scale: 10);
        var update = Reference.RandomVector(random, length);
        const float Weight = 37.25f;
        var expected = new double[length];
        for (var i = 0; i < length; i++)
        {
            expected[i] = sum[i] + (double)Weight * update[i];
        }

        AggregationKernels.Accumulate(sum, update, Weight);

        Reference.AssertClose(expected, sum, 1e-6);
    }

    /// <summary>Scale multiplies every value by the factor.</summary>
    [Theory]
    [MemberData(nameof(Reference.Lengths), MemberType = typeof(Reference))]
    public void Scale_multiplies_every_value(int length)
    {
        var values = Reference.RandomVector(new Random(length), length, scale: 100);
        const float Factor = -0.0123f;
        var expected = new double[length];
        for (var i = 0; i < length; i++)
        {
            expected[i] = values[i] * (double)Factor;
        }

        AggregationKernels.Scale(values, Factor);

        Reference.AssertClose(expected, values, 1e-7);
    }

    /// <summary>The norm equals √(Σ x²) summed in double, to within 1e-7 relative.</summary>
    [Theory]
    [MemberData(nameof(Reference.Lengths), MemberType = typeof(Reference))]
    public void L2Norm_matches_a_double_precision_sum(int length)
    {
        var values = Reference.RandomVector(new Random(length), length);

        Assert.Equal(DoubleNorm(values), AggregationKernels.L2Norm(values), DoubleNorm(values) * 1e-7);
    }

    /// <summary>
    /// Over a million values of one sign, the worst case for a float accumulator, the norm stays within 1e-7 of the
    /// double sum (a single float accumulator drifts by 4e-5 here, TensorPrimitives.Norm by 6e-7).
    /// </summary>
    [Fact]
    public void L2Norm_of_a_million_values_keeps_double_precision_sums()
    {
        var random = new Random(1_000_000);
        var values = new float[1_000_000];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = 1 + (float)random.NextDouble();
        }

        var expected = DoubleNorm(values);

        Assert.Equal(expected, AggregationKernels.L2Norm(values), expected * 1e-7);
    }

    /// <summary>Values whose squares overflow a float still give their finite norm; empty gives 0.</summary>
    [Fact]
    public void L2Norm_survives_values_whose_squares_overflow_a_float()
    {
        float[] values = [3e30f, -4e30f, 0];

        Assert.Equal(5e30, AggregationKernels.L2Norm(values), 5e30 * 1e-7);
        Assert.Equal(0, AggregationKernels.L2Norm([]));
        Assert.Equal(double.PositiveInfinity, AggregationKernels.L2Norm([1, float.NegativeInfinity]));
        Assert.True(double.IsNaN(AggregationKernels.L2Norm([1, float.NaN])));
    }

    /// <summary>NaN, +∞ and −∞ are found at the first, a middle and the last index of every length.</summary>
    [Theory]
    [MemberData(nameof(Reference.Lengths), MemberType = typeof(Reference))]
    public void FirstNonFinite_finds_NaN_and_infinities_anywhere(int length)
    {
        var values = Reference.RandomVector(new Random(length), length);
        Assert.Equal(-1, AggregationKernels.FirstNonFinite(values));

        foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            foreach (var index in new[] { 0, length / 2, length - 1 })
            {
                var original = values[index];
                values[index] = bad;
                Assert.Equal(index, AggregationKernels.FirstNonFinite(values));
                values[index] = original;
            }
        }
    }

    /// <summary>Every position of a length spanning several vectors and a tail, and the first of two bad values, is found.</summary>
    [Fact]
    public void FirstNonFinite_finds_the_first_of_several_at_every_position()
    {
        var values = new float[8200];
        for (var index = 0; index < values.Length; index++)
        {
            values[index] = float.NaN;
            values[values.Length - 1] = float.PositiveInfinity;
            Assert.Equal(index, AggregationKernels.FirstNonFinite(values));
            values[index] = 0;
        }
    }

    /// <summary>The largest, smallest and subnormal floats and −0 are finite.</summary>
    [Fact]
    public void FirstNonFinite_accepts_extreme_finite_values()
    {
        float[] values = [float.MaxValue, float.MinValue, float.Epsilon, -float.Epsilon, -0f, 1e-40f];

        Assert.Equal(-1, AggregationKernels.FirstNonFinite(values));
        Assert.Equal(-1, AggregationKernels.FirstNonFinite([]));
    }

    /// <summary>A length mismatch or a non-finite weight or factor is refused with the detail.</summary>
    [Fact]
    public void Bad_arguments_are_refused_with_the_detail()
    {
        var sum = new float[8];

        var lengths = Assert.Throws<ArgumentException>(() => AggregationKernels.Accumulate(sum, new float[7], 1));
        Assert.Contains("The update has 7 values where 8 are expected", lengths.Message);
        var weight = Assert.Throws<ArgumentOutOfRangeException>(() => AggregationKernels.Accumulate(sum, new float[8], float.NaN));
        Assert.Contains("weight must be a finite number, not NaN", weight.Message);
        var factor = Assert.Throws<ArgumentOutOfRangeException>(() => AggregationKernels.Scale(sum, float.PositiveInfinity));
        Assert.Contains("factor must be a finite number", factor.Message);
    }

    private static double DoubleNorm(ReadOnlySpan<float> values)
    {
        double sum = 0;
        foreach (var value in values)
        {
            sum += (double)value * value;
        }

        return Math.Sqrt(sum);
    }

    /// <summary>
    /// AccumulateMany folds 1 to 17 weighted updates (stretch by stretch of the sum, up to four per inner pass) as a
    /// double-precision reference does, over lengths within one stretch and across several with a partial last one.
    /// </summary>
    [Theory]
    [InlineData(1, 7)]
    [InlineData(2, 1000)]
    [InlineData(3, 100_003)]
    [InlineData(4, 33)]
    [InlineData(5, 1000)]
    [InlineData(7, 13)]
    [InlineData(8, 1027)]
    [InlineData(9, 4099)]
    [InlineData(17, 2053)]
    [InlineData(6, (3 * AggregationKernels.FoldBlockLength) + 5)]
    [InlineData(16, (2 * AggregationKernels.FoldBlockLength) + 1)]
    public void AccumulateMany_folds_the_weighted_updates(int count, int length)
    {
        var random = new Random((count * 1000) + length);
        var sum = Enumerable.Range(0, length).Select(_ => (float)random.NextDouble()).ToArray();
        var updates = Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray()).ToArray();
        var weights = Enumerable.Range(0, count).Select(i => (float)(i + 1) * 0.7f).ToArray();
        var expected = sum.Select((v, i) => v + updates.Select((u, k) => (double)u[i] * weights[k]).Sum()).ToArray();

        AggregationKernels.AccumulateMany(sum, [.. updates.Select(u => (ReadOnlyMemory<float>)u)], weights);

        for (var i = 0; i < length; i++)
        {
            Assert.True(Math.Abs(expected[i] - sum[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])), $"value {i}: expected {expected[i]}, got {sum[i]}");
        }
    }

    /// <summary>AccumulateMany refuses mismatched weights, lengths and non-finite weights by name.</summary>
    [Fact]
    public void AccumulateMany_refuses_bad_arguments()
    {
        var sum = new float[8];
        Assert.Contains("2 weights", Assert.Throws<ArgumentException>(() => AggregationKernels.AccumulateMany(sum, [new float[8], new float[8]], [1f])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => AggregationKernels.AccumulateMany(sum, [new float[7]], [1f]));
        Assert.Throws<ArgumentOutOfRangeException>(() => AggregationKernels.AccumulateMany(sum, [new float[8]], [float.PositiveInfinity]));
    }
}
