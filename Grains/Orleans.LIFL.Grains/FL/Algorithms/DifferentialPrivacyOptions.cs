using MathNet.Numerics.Random;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// A job's central differential privacy (<see cref="DifferentialPrivacy"/>): every update is clipped to L2 norm
/// <paramref name="ClipNorm"/> C, and the mean of the clipped updates gets Gaussian noise of standard deviation
/// <paramref name="NoiseMultiplier"/>·C / updates.
/// </summary>
/// <param name="Seed">Seeds the noise for a reproducible experiment; null draws it from a cryptographically secure source.</param>
[GenerateSerializer]
[Immutable]
public sealed record DifferentialPrivacyOptions(
    [property: Id(0)] double ClipNorm,
    [property: Id(1)] double NoiseMultiplier,
    [property: Id(2)] int? Seed)
{
    /// <summary>Null when the options are usable; otherwise which setting is wrong and why.</summary>
    public string? Problem() =>
        !(ClipNorm > 0 && double.IsFinite(ClipNorm)) ? $"{nameof(ClipNorm)} is {ClipNorm}: it must be positive and finite"
        : !(NoiseMultiplier >= 0 && double.IsFinite(NoiseMultiplier)) ? $"{nameof(NoiseMultiplier)} is {NoiseMultiplier}: it must be zero or positive, and finite"
        : null;

    /// <summary>
    /// The source of the noise. A seeded <see cref="Random"/> repeats its noise, so whoever knows the seed can subtract
    /// it: seeds are for experiments, and a deployment that must be private leaves <see cref="Seed"/> null.
    /// </summary>
    public Random CreateNoiseSource() => Seed is int seed ? new Random(seed) : new CryptoRandomSource();
}
