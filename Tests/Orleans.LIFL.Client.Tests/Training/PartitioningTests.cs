using Orleans.LIFL.Client.Training;
using Xunit;

namespace Orleans.LIFL.Client.Tests.Training;

/// <summary>Splitting examples among simulated clients: complete, disjoint, reproducible, and as skewed as alpha asks.</summary>
public sealed class PartitioningTests
{
    private static byte[] TrainingLabels => FashionMnist.Load(FashionMnistSplit.Train).Labels;

    /// <summary>IID parts cover every index once and differ in size by at most one, the larger ones first.</summary>
    [Fact]
    public void Iid_deals_every_index_once_in_near_equal_parts()
    {
        var parts = Partitioning.Iid(count: 1_003, clients: 10, seed: 1);

        AssertEachIndexOnce(parts, 1_003);
        Assert.Equal([101, 101, 101, 100, 100, 100, 100, 100, 100, 100], parts.Select(p => p.Length));
    }

    /// <summary>The same seed gives the same parts, another seed other parts.</summary>
    [Fact]
    public void Iid_is_a_function_of_the_seed()
    {
        Assert.Equal(Partitioning.Iid(500, 7, seed: 3), Partitioning.Iid(500, 7, seed: 3));
        Assert.NotEqual(Partitioning.Iid(500, 7, seed: 3), Partitioning.Iid(500, 7, seed: 4));
    }

    /// <summary>The Dirichlet split of the real labels covers every index once, leaves no client empty, and is a function of the seed.</summary>
    [Fact]
    public void Dirichlet_deals_every_index_once_and_is_a_function_of_the_seed()
    {
        var labels = TrainingLabels;

        var parts = Partitioning.Dirichlet(labels, classes: 10, clients: 20, alpha: 0.5, seed: 11);

        AssertEachIndexOnce(parts, labels.Length);
        Assert.All(parts, part => Assert.NotEmpty(part));
        Assert.Equal(parts, Partitioning.Dirichlet(labels, 10, 20, 0.5, seed: 11));
        Assert.NotEqual(parts, Partitioning.Dirichlet(labels, 10, 20, 0.5, seed: 12));
    }

    /// <summary>
    /// Alpha sets the label skew: at 0.1 a client's most common class is most of its data, at 100 it is barely more
    /// than the 10% of a uniform mix.
    /// </summary>
    [Fact]
    public void Small_alpha_skews_the_labels_and_large_alpha_does_not()
    {
        var labels = TrainingLabels;

        var skewed = MeanLargestLabelShare(Partitioning.Dirichlet(labels, 10, 20, alpha: 0.1, seed: 5), labels);
        var mixed = MeanLargestLabelShare(Partitioning.Dirichlet(labels, 10, 20, alpha: 100, seed: 5), labels);

        Assert.InRange(skewed, 0.6, 0.75);
        Assert.InRange(mixed, 0.1, 0.13);
    }

    /// <summary>With more clients than a tiny alpha feeds, each client left empty still gets one example.</summary>
    [Theory]
    [InlineData(0.01)]
    [InlineData(1e-300)] // every Gamma draw underflows: each class goes to one client
    public void Dirichlet_leaves_no_client_empty(double alpha)
    {
        var labels = Enumerable.Range(0, 100).Select(i => (byte)(i % 10)).ToArray();

        var parts = Partitioning.Dirichlet(labels, classes: 10, clients: 50, alpha, seed: 2);

        AssertEachIndexOnce(parts, 100);
        Assert.All(parts, part => Assert.NotEmpty(part));
    }

    /// <summary>Arguments that cannot make a split are rejected by name.</summary>
    [Fact]
    public void Impossible_splits_are_rejected()
    {
        byte[] labels = [0, 1, 2, 3];
        Assert.Equal("clients", Assert.Throws<ArgumentOutOfRangeException>(() => Partitioning.Iid(10, 0, 1)).ParamName);
        Assert.Equal("count", Assert.Throws<ArgumentOutOfRangeException>(() => Partitioning.Iid(3, 4, 1)).ParamName);
        Assert.Equal("clients", Assert.Throws<ArgumentOutOfRangeException>(() => Partitioning.Dirichlet(labels, 4, 0, 1, 1)).ParamName);
        Assert.Equal("alpha", Assert.Throws<ArgumentOutOfRangeException>(() => Partitioning.Dirichlet(labels, 4, 2, 0, 1)).ParamName);
        Assert.Equal("alpha", Assert.Throws<ArgumentOutOfRangeException>(() => Partitioning.Dirichlet(labels, 4, 2, double.NaN, 1)).ParamName);
        Assert.Equal("labels", Assert.Throws<ArgumentException>(() => Partitioning.Dirichlet(labels, 4, 5, 1, 1)).ParamName);
        Assert.Contains("label 3, outside the 3 classes", Assert.Throws<ArgumentException>(() => Partitioning.Dirichlet(labels, 3, 2, 1, 1)).Message);
    }

    private static void AssertEachIndexOnce(int[][] parts, int count) =>
        Assert.Equal(Enumerable.Range(0, count), parts.SelectMany(p => p).Order());

    private static double MeanLargestLabelShare(int[][] parts, byte[] labels) =>
        parts.Average(part => part.CountBy(i => labels[i]).Max(pair => pair.Value) / (double)part.Length);
}
