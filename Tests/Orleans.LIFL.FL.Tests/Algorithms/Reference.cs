using Xunit;

namespace Orleans.LIFL.FL.Tests.Algorithms;

/// <summary>Inputs and comparisons shared by the algorithm tests, whose references are plain double-precision loops.</summary>
internal static class Reference
{
    /// <summary>Lengths of one value, of fewer values than a vector register, and of lengths no block size divides.</summary>
    public static TheoryData<int> Lengths => [1, 7, 1000, 100_003];

    /// <summary>Values drawn uniformly from [−scale, scale).</summary>
    public static float[] RandomVector(Random random, int length, double scale = 1)
    {
        var values = new float[length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)((random.NextDouble() * 2 - 1) * scale);
        }

        return values;
    }

    public static double[] ToDouble(ReadOnlySpan<float> values)
    {
        var result = new double[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            result[i] = values[i];
        }

        return result;
    }

    /// <summary>
    /// Fails at the first value off by more than <paramref name="tolerance"/> relative to the expected value, or to
    /// <paramref name="scale"/> where the expected value is smaller (float errors follow the size of the inputs, so a
    /// value near zero after cancellation cannot be held to its own relative precision).
    /// </summary>
    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double tolerance, double scale = 1)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            var allowed = tolerance * Math.Max(scale, Math.Abs(expected[i]));
            if (!(Math.Abs(actual[i] - expected[i]) <= allowed))
            {
                Assert.Fail($"At index {i} of {expected.Length}: expected {expected[i]:R}, got {actual[i]:R} (allowed error {allowed:G3}).");
            }
        }
    }

    /// <summary>The largest |expected| value: the scale of a vector whose values are all small.</summary>
    public static double MaxMagnitude(ReadOnlySpan<double> values)
    {
        double largest = 0;
        foreach (var value in values)
        {
            largest = Math.Max(largest, Math.Abs(value));
        }

        return largest;
    }
}
