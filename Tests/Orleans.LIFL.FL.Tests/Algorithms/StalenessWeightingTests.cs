using Orleans.LIFL.Grains.FL.Algorithms;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Algorithms;

/// <summary>FedBuff's staleness weight 1/√(1 + s).</summary>
public sealed class StalenessWeightingTests
{
    /// <summary>The weight is 1/√(1 + s): 1 when fresh, ½ three steps behind.</summary>
    [Theory]
    [InlineData(0, 1.0)]
    [InlineData(3, 0.5)]
    [InlineData(8, 1.0 / 3)]
    [InlineData(99, 0.1)]
    [InlineData(1_000_000_000_000 - 1, 1e-6)]
    public void Weight_is_one_over_root_of_one_plus_staleness(long staleness, double expected) =>
        Assert.Equal(expected, StalenessWeighting.Weight(staleness), expected * 1e-15);

    /// <summary>A negative staleness is refused.</summary>
    [Fact]
    public void Negative_staleness_is_refused() =>
        Assert.Equal("staleness", Assert.Throws<ArgumentOutOfRangeException>(() => StalenessWeighting.Weight(-1)).ParamName);
}
