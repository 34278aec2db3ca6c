using MathNet.Numerics.Distributions;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// Central differential privacy in the style of DP-FedAvg (McMahan et al. 2018, "Learning Differentially Private
/// Recurrent Language Models"): each update is clipped to L2 norm C, the clipped updates are averaged unweighted (each
/// counts once whatever its example count, so one client moves the mean by at most C / updates), and Gaussian noise of
/// standard deviation σ·C / updates is added to that mean.
/// <para>
/// Clipping is per update and the sum of clipped updates is additive, so both split across an aggregation hierarchy:
/// the leaves clip, every level adds up sums and counts. The noise is added once, at the top, to the mean of all the
/// round's clipped updates, which is what its standard deviation is calibrated to.
/// </para>
/// </summary>
public static class DifferentialPrivacy
{
    /// <summary>Noise is drawn this many values at a time into one reused buffer.</summary>
    private const int NoiseBlockLength = 4096;

    /// <summary>
    /// Scales <paramref name="update"/> in place to L2 norm at most <paramref name="clipNorm"/> (to within float rounding)
    /// and returns the factor applied: 1 when the update is already within the bound, and then it is left untouched.
    /// </summary>
    public static double Clip(Span<float> update, double clipNorm)
    {
        RequirePositive(clipNorm, nameof(clipNorm));
        var norm = AggregationKernels.L2Norm(update);
        if (!double.IsFinite(norm))
        {
            throw new ArgumentException($"The update's L2 norm is {norm}: check it with {nameof(UpdateValidation)} before clipping.", nameof(update));
        }

        if (norm <= clipNorm)
        {
            return 1;
        }

        var factor = (float)(clipNorm / norm);
        AggregationKernels.Scale(update, factor);
        return factor;
    }

    /// <summary>
    /// σ·C / <paramref name="updates"/>: the standard deviation of the Gaussian noise to add to the unweighted mean of
    /// <paramref name="updates"/> updates clipped to <paramref name="clipNorm"/> C, for noise multiplier σ.
    /// </summary>
    public static double NoiseStandardDeviation(double clipNorm, double noiseMultiplier, int updates)
    {
        RequirePositive(clipNorm, nameof(clipNorm));
        if (!(noiseMultiplier >= 0 && double.IsFinite(noiseMultiplier)))
        {
            throw new ArgumentOutOfRangeException(nameof(noiseMultiplier), noiseMultiplier, $"The noise multiplier must be zero or positive, and finite, not {noiseMultiplier}.");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(updates);
        return noiseMultiplier * clipNorm / updates;
    }

    /// <summary>Adds independent N(0, <paramref name="standardDeviation"/>²) noise to every value of <paramref name="mean"/>.</summary>
    public static void AddGaussianNoise(Span<float> mean, double standardDeviation, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (!(standardDeviation >= 0 && double.IsFinite(standardDeviation)))
        {
            throw new ArgumentOutOfRangeException(nameof(standardDeviation), standardDeviation, $"The noise's standard deviation must be zero or positive, and finite, not {standardDeviation}.");
        }

        // The bulk sampler uses both values of each polar Box–Muller draw; sampling one value at a time discards one.
        var noise = new double[Math.Min(NoiseBlockLength, mean.Length)];
        for (var start = 0; start < mean.Length; start += NoiseBlockLength)
        {
            var block = mean.Slice(start, Math.Min(NoiseBlockLength, mean.Length - start));
            if (block.Length < noise.Length)
            {
                // The sampler fills the whole buffer; a short last block gets one of its length.
                noise = new double[block.Length];
            }

            Normal.Samples(random, noise, 0, standardDeviation);
            for (var i = 0; i < block.Length; i++)
            {
                block[i] += (float)noise[i];
            }
        }
    }

    private static void RequirePositive(double value, string parameterName)
    {
        if (!(value > 0 && double.IsFinite(value)))
        {
            throw new ArgumentOutOfRangeException(parameterName, value, $"The {parameterName} must be positive and finite, not {value}.");
        }
    }
}
