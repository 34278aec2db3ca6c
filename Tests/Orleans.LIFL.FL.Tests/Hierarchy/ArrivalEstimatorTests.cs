using Orleans.LIFL.Grains.FL.Hierarchy;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Hierarchy;

/// <summary>The estimator's moving averages are exact, start from the given guesses and forget silos that went quiet.</summary>
public sealed class ArrivalEstimatorTests
{
    private static ArrivalEstimator Initial() =>
        ArrivalEstimator.Initial(10, ["s3", "s1", "s2", "s4"], TimeSpan.FromSeconds(30), defaultBytesPerSecondPerCore: 100);

    /// <summary>Before any observation the selected clients are spread evenly over the given silos, with the default window and throughput.</summary>
    [Fact]
    public void Initially_the_selected_clients_are_spread_evenly()
    {
        var estimator = Initial();

        Assert.Equal([2.5, 2.5, 2.5, 2.5], new[] { "s1", "s2", "s3", "s4" }.Select(estimator.Expected));
        Assert.Equal(["s1", "s2", "s3", "s4"], estimator.Silos.Select(s => s.Silo));
        Assert.Equal(0, estimator.Expected("s9"));
        Assert.Equal((TimeSpan.FromSeconds(30), 100.0, 0.5, 0), (estimator.Window, estimator.BytesPerSecondPerCore, estimator.Alpha, estimator.Rounds));
    }

    /// <summary>
    /// The first round replaces the guesses; later ones average with α = 0.5, a silo missing from a round counting as
    /// none: a 6 → 0.5·2 + 0.5·6 = 4 → 4; b 2 → 1 → 0.5; c 0 → 2 → 1; the window 10 s → 15 s → 10 s.
    /// </summary>
    [Fact]
    public void Averages_are_exponentially_weighted()
    {
        var first = Initial().Observe(new Dictionary<string, int> { ["a"] = 6, ["b"] = 2 }, TimeSpan.FromSeconds(10));
        Assert.Equal((6.0, 2.0, 0.0, 0.0), (first.Expected("a"), first.Expected("b"), first.Expected("c"), first.Expected("s1")));
        Assert.Equal((TimeSpan.FromSeconds(10), 1), (first.Window, first.Rounds));

        var second = first.Observe(new Dictionary<string, int> { ["a"] = 2, ["c"] = 4 }, TimeSpan.FromSeconds(20));
        Assert.Equal((4.0, 1.0, 2.0), (second.Expected("a"), second.Expected("b"), second.Expected("c")));
        Assert.Equal(TimeSpan.FromSeconds(15), second.Window);

        var third = second.Observe(new Dictionary<string, int> { ["a"] = 4 }, TimeSpan.FromSeconds(5));
        Assert.Equal((4.0, 0.5, 1.0), (third.Expected("a"), third.Expected("b"), third.Expected("c")));
        Assert.Equal((TimeSpan.FromSeconds(10), 3), (third.Window, third.Rounds));
        Assert.Equal(["a", "b", "c"], third.Silos.Select(s => s.Silo));
    }

    /// <summary>α is the weight of the newest sample: with 0.25, 8 then 0 gives 0.75·8 = 6.</summary>
    [Fact]
    public void Alpha_weighs_the_newest_sample()
    {
        var estimator = ArrivalEstimator.Initial(4, ["a"], TimeSpan.FromSeconds(1), 1, alpha: 0.25)
            .Observe(new Dictionary<string, int> { ["a"] = 8 }, TimeSpan.FromSeconds(8))
            .Observe(new Dictionary<string, int> { ["a"] = 0 }, TimeSpan.FromSeconds(4));

        Assert.Equal(6.0, estimator.Expected("a"));
        Assert.Equal(TimeSpan.FromSeconds(7), estimator.Window);
    }

    /// <summary>A quiet silo halves each round and is forgotten once under 0.1 update: 1 → 0.5 → 0.25 → 0.125 → gone.</summary>
    [Fact]
    public void A_silo_that_went_quiet_is_forgotten()
    {
        var window = TimeSpan.FromSeconds(1);
        var estimator = Initial().Observe(new Dictionary<string, int> { ["a"] = 1, ["b"] = 9 }, window);
        var busy = new Dictionary<string, int> { ["b"] = 9 };

        var expected = new List<double>();
        for (var round = 0; round < 4; round++)
        {
            estimator = estimator.Observe(busy, window);
            expected.Add(estimator.Expected("a"));
        }

        Assert.Equal([0.5, 0.25, 0.125, 0], expected);
        Assert.Equal(["b"], estimator.Silos.Select(s => s.Silo));
    }

    /// <summary>The throughput starts at the default, the first measurement replaces it, later ones average: 300, 200, 300.</summary>
    [Fact]
    public void Throughput_is_averaged_from_the_first_measurement()
    {
        var estimator = Initial();
        var values = new List<double>();
        foreach (var sample in new[] { 300.0, 100.0, 400.0 })
        {
            estimator = estimator.ObserveThroughput(sample);
            values.Add(estimator.BytesPerSecondPerCore);
        }

        Assert.Equal([300.0, 200.0, 300.0], values);
        Assert.Equal((3, 0), (estimator.ThroughputSamples, estimator.Rounds));
    }

    /// <summary>Observations never change the estimator they are folded into.</summary>
    [Fact]
    public void Observing_returns_a_new_estimator()
    {
        var estimator = Initial();

        _ = estimator.Observe(new Dictionary<string, int> { ["s1"] = 7 }, TimeSpan.FromSeconds(2));
        _ = estimator.ObserveThroughput(5);

        Assert.Equal(Initial(), estimator);
    }

    /// <summary>Impossible samples and settings are refused.</summary>
    [Fact]
    public void Bad_samples_are_refused()
    {
        var estimator = Initial();

        Assert.Equal("arrivalsBySilo", Assert.Throws<ArgumentException>(() => estimator.Observe(new Dictionary<string, int> { ["a"] = -1 }, TimeSpan.FromSeconds(1))).ParamName);
        Assert.Equal("window", Assert.Throws<ArgumentOutOfRangeException>(() => estimator.Observe(new Dictionary<string, int>(), TimeSpan.Zero)).ParamName);
        Assert.Equal("bytesPerSecondPerCore", Assert.Throws<ArgumentOutOfRangeException>(() => estimator.ObserveThroughput(double.PositiveInfinity)).ParamName);
        Assert.Equal("alpha", Assert.Throws<ArgumentOutOfRangeException>(() => ArrivalEstimator.Initial(1, ["a"], TimeSpan.FromSeconds(1), 1, alpha: 0)).ParamName);
        Assert.Equal("silos", Assert.Throws<ArgumentException>(() => ArrivalEstimator.Initial(1, [], TimeSpan.FromSeconds(1), 1)).ParamName);
    }

    /// <summary>The estimator feeds the planner: its expectations and window become the round's inputs and size the hierarchy.</summary>
    [Fact]
    public void Estimates_size_the_next_plan()
    {
        var estimator = ArrivalEstimator.Initial(20, ["a1", "b1"], TimeSpan.FromSeconds(10), 1_000)
            .Observe(new Dictionary<string, int> { ["a1"] = 16, ["b1"] = 4 }, TimeSpan.FromSeconds(2))
            .ObserveThroughput(2_000);
        var inputs = new PlannerInputs(
            [new SiloCapacity("a1", "A", 8, 0, estimator.Expected("a1")), new SiloCapacity("b1", "B", 8, 0, estimator.Expected("b1"))],
            UpdateBytes: 1_000,
            estimator.BytesPerSecondPerCore,
            estimator.Window);

        // 20 updates × 1000 B / (2000 B/s × 2 s) = 5 leaves, shared 16:4.
        var plan = AggregationPlanner.Plan(inputs);

        Assert.Equal((4, 1), (plan.LeafCount("a1"), plan.LeafCount("b1")));
    }
}
