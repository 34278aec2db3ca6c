using Orleans.LIFL.Grains.FL.Hierarchy;
using Orleans.LIFL.Serialization;
using Xunit;
using static Orleans.LIFL.FL.Tests.Hierarchy.Cluster;

namespace Orleans.LIFL.FL.Tests.Hierarchy;

/// <summary>Plans travel to aggregators and sessions, and the job persists its estimator: both round trip through the wire format.</summary>
public sealed class HierarchySerializationTests
{
    private static T RoundTrip<T>(T value) => LiflSerializer.Deserialize<T>(LiflSerializer.SerializeToArray(value));

    /// <summary>A four-level plan, a flat one and the inputs come back equal, children included.</summary>
    [Fact]
    public void Plans_round_trip()
    {
        var inputs = Needing(20, Silo("s1", "n1", 32, 60), Silo("s2", "n2", 32, 40, load: 0.25)) with { FanOut = 4, MaxLeaves = 30 };
        var plan = AggregationPlanner.Plan(inputs);
        Assert.Equal(4, plan.Depth);

        var copy = RoundTrip(plan);

        Assert.Equal(plan, copy);
        Assert.Equal(plan.Top.Children, copy.Top.Children);
        Assert.Equal(AggregationPlan.Flat("s1", "n1"), RoundTrip(AggregationPlan.Flat("s1", "n1")));
        Assert.Equal(inputs, RoundTrip(inputs));
    }

    /// <summary>An estimator with per-silo averages, a window and a throughput comes back equal and keeps estimating the same.</summary>
    [Fact]
    public void The_estimator_round_trips()
    {
        var estimator = ArrivalEstimator.Initial(6, ["b", "a"], TimeSpan.FromSeconds(12), 250, alpha: 0.3)
            .Observe(new Dictionary<string, int> { ["a"] = 5, ["c"] = 1 }, TimeSpan.FromMilliseconds(1500))
            .ObserveThroughput(400);

        var copy = RoundTrip(estimator);

        Assert.Equal(estimator, copy);
        Assert.Equal((5.0, 1.0, 0.0), (copy.Expected("a"), copy.Expected("c"), copy.Expected("b")));
        var next = new Dictionary<string, int> { ["a"] = 1 };
        Assert.Equal(estimator.Observe(next, TimeSpan.FromSeconds(1)), copy.Observe(next, TimeSpan.FromSeconds(1)));
    }
}
