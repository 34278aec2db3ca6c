using Orleans.LIFL.Grains.FL.Algorithms;
using Orleans.LIFL.Serialization;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Algorithms;

/// <summary>The records the algorithms hand to grains and storage round trip through the project's serializer.</summary>
public sealed class SerializationTests
{
    private static T RoundTrip<T>(T value) => LiflSerializer.Deserialize<T>(LiflSerializer.SerializeToArray(value));

    /// <summary>Options, with the learning rate set or left to the optimizer, and refusals come back equal.</summary>
    [Fact]
    public void Options_and_problems_round_trip()
    {
        var defaults = new ServerOptimizerOptions();
        var custom = new ServerOptimizerOptions { ServerLearningRate = 0.03, Momentum = 0.5, Beta1 = 0.8, Beta2 = 0.95, Tau = 1e-6 };
        var privacy = new DifferentialPrivacyOptions(ClipNorm: 2.5, NoiseMultiplier: 1.1, Seed: 7);
        var problem = new UpdateProblem(UpdateProblemKind.NormTooLarge, "the update's L2 norm 12.5 exceeds the job's bound 10");

        Assert.Equal(defaults, RoundTrip(defaults));
        Assert.Equal(custom, RoundTrip(custom));
        Assert.Equal(privacy, RoundTrip(privacy));
        Assert.Equal(privacy with { Seed = null }, RoundTrip(privacy with { Seed = null }));
        Assert.Equal(problem, RoundTrip(problem));
    }

    /// <summary>A state's moments come back value for value, and an absent moment stays absent.</summary>
    [Fact]
    public void Optimizer_state_round_trips()
    {
        var state = new ServerOptimizerState("fedavgm", long.MaxValue, [1.5f, -0f, float.Epsilon], null);

        var copy = RoundTrip(state);

        Assert.Equal(state.Algorithm, copy.Algorithm);
        Assert.Equal(state.Steps, copy.Steps);
        Assert.Equal(state.FirstMoment, copy.FirstMoment);
        Assert.Null(copy.SecondMoment);
    }
}
