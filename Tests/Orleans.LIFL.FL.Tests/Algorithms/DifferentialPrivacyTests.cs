using MathNet.Numerics.Random;
using Orleans.LIFL.Grains.FL.Algorithms;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Algorithms;

/// <summary>Clipping, the noise's standard deviation and the Gaussian noise of central DP-FedAvg.</summary>
public sealed class DifferentialPrivacyTests
{
    /// <summary>An update above the bound is scaled to norm C along its own direction, and the factor applied is returned.</summary>
    [Theory]
    [MemberData(nameof(Reference.Lengths), MemberType = typeof(Reference))]
    public void Clip_scales_a_large_update_to_the_bound(int length)
    {
        var update = Reference.RandomVector(new Random(length), length, scale: 10);
        var original = Reference.ToDouble(update);
        var norm = Math.Sqrt(original.Sum(x => x * x));
        var clipNorm = norm / 4;

        var factor = DifferentialPrivacy.Clip(update, clipNorm);

        Assert.Equal(clipNorm / norm, factor, 1e-6 * factor);
        Assert.Equal(clipNorm, AggregationKernels.L2Norm(update), clipNorm * 1e-6);
        Reference.AssertClose(original.Select(x => x * factor).ToArray(), update, 1e-6);
    }

    /// <summary>An update within the bound is left exactly as it was, with factor 1.</summary>
    [Fact]
    public void Clip_leaves_a_small_update_unchanged()
    {
        var update = Reference.RandomVector(new Random(3), 1000, scale: 0.01);
        var original = update.ToArray();

        Assert.Equal(1, DifferentialPrivacy.Clip(update, 10));
        Assert.Equal(original, update);
        Assert.Equal(1, DifferentialPrivacy.Clip(new float[5], 10));
    }

    /// <summary>The standard deviation for the mean of n clipped updates is σ·C / n.</summary>
    [Fact]
    public void Noise_standard_deviation_is_multiplier_times_clip_over_updates()
    {
        Assert.Equal(0.044, DifferentialPrivacy.NoiseStandardDeviation(2.0, 1.1, 50), 1e-15);
        Assert.Equal(0, DifferentialPrivacy.NoiseStandardDeviation(1, 0, 10));
        Assert.Equal(3.0, DifferentialPrivacy.NoiseStandardDeviation(3, 1, 1));
    }

    /// <summary>Over a million values, the added noise has mean ≈ 0 and a standard deviation within 1% of the one asked for.</summary>
    [Fact]
    public void Noise_has_the_requested_standard_deviation()
    {
        const int Count = 1_000_000;
        const double StandardDeviation = 0.3;
        var random = new Random(20250101);
        var before = Reference.RandomVector(random, Count);
        var mean = before.ToArray();

        DifferentialPrivacy.AddGaussianNoise(mean, StandardDeviation, random);

        double sum = 0, sumOfSquares = 0;
        for (var i = 0; i < Count; i++)
        {
            var noise = (double)mean[i] - before[i];
            sum += noise;
            sumOfSquares += noise * noise;
        }

        var noiseMean = sum / Count;
        var noiseStandardDeviation = Math.Sqrt(sumOfSquares / Count - noiseMean * noiseMean);
        Assert.InRange(noiseStandardDeviation / StandardDeviation, 0.99, 1.01);
        // Four standard errors of the mean: σ/√n = 3e-4.
        Assert.InRange(noiseMean, -4 * StandardDeviation / Math.Sqrt(Count), 4 * StandardDeviation / Math.Sqrt(Count));
    }

    /// <summary>Every block of the noise is freshly drawn, the same seed draws the same noise, and a zero deviation adds nothing.</summary>
    [Fact]
    public void Noise_is_fresh_per_block_reproducible_per_seed_and_absent_at_zero()
    {
        var first = new float[10_000];
        var second = new float[10_000];
        var options = new DifferentialPrivacyOptions(ClipNorm: 1, NoiseMultiplier: 1, Seed: 42);

        DifferentialPrivacy.AddGaussianNoise(first, 1, options.CreateNoiseSource());
        DifferentialPrivacy.AddGaussianNoise(second, 1, options.CreateNoiseSource());

        Assert.Equal(first, second);
        Assert.NotEqual(first[..4096], first[4096..8192]);
        Assert.DoesNotContain(0f, first);

        var untouched = new float[] { 1, 2, 3 };
        DifferentialPrivacy.AddGaussianNoise(untouched, 0, new Random(1));
        Assert.Equal([1f, 2f, 3f], untouched);
    }

    /// <summary>Unseeded options draw noise from a cryptographically secure source.</summary>
    [Fact]
    public void Unseeded_noise_comes_from_a_secure_source() =>
        Assert.IsType<CryptoRandomSource>(new DifferentialPrivacyOptions(1, 1, Seed: null).CreateNoiseSource());

    /// <summary>Options name their bad setting; bad arguments are refused naming the value; a non-finite update is not clipped.</summary>
    [Fact]
    public void Bad_settings_and_arguments_are_refused_with_the_detail()
    {
        Assert.Null(new DifferentialPrivacyOptions(1, 0, null).Problem());
        Assert.Equal("ClipNorm is 0: it must be positive and finite", new DifferentialPrivacyOptions(0, 1, null).Problem());
        Assert.Equal("NoiseMultiplier is -1: it must be zero or positive, and finite", new DifferentialPrivacyOptions(1, -1, null).Problem());

        Assert.Contains("The clipNorm must be positive and finite, not -2",
            Assert.Throws<ArgumentOutOfRangeException>(() => DifferentialPrivacy.Clip(new float[3], -2)).Message);
        Assert.Contains("The update's L2 norm is NaN",
            Assert.Throws<ArgumentException>(() => DifferentialPrivacy.Clip(new[] { 1f, float.NaN }, 1)).Message);
        Assert.Contains("The noise multiplier must be zero or positive, and finite, not -0.5",
            Assert.Throws<ArgumentOutOfRangeException>(() => DifferentialPrivacy.NoiseStandardDeviation(1, -0.5, 10)).Message);
        Assert.Equal("updates", Assert.Throws<ArgumentOutOfRangeException>(() => DifferentialPrivacy.NoiseStandardDeviation(1, 1, 0)).ParamName);
        Assert.Contains("standard deviation must be zero or positive, and finite, not Infinity",
            Assert.Throws<ArgumentOutOfRangeException>(() => DifferentialPrivacy.AddGaussianNoise(new float[3], double.PositiveInfinity, new Random(1))).Message);
    }
}
