using System.Numerics.Tensors;
using Orleans.LIFL.Grains.FL.Algorithms;
using Orleans.LIFL.Serialization;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Algorithms;

/// <summary>The server optimizers against a hand-written double-precision Algorithm 2 of Reddi et al. 2021.</summary>
public sealed class ServerOptimizerTests
{
    private static readonly string[] OptimizerAlgorithms = ["fedavg", "fedavgm", "fedadam", "fedyogi", "fedadagrad"];

    private static readonly ServerOptimizerOptions CustomOptions = new()
    {
        ServerLearningRate = 0.5,
        Momentum = 0.5,
        Beta1 = 0.7,
        Beta2 = 0.9,
        Tau = 0.05,
    };

    public static TheoryData<string, int, bool> AlgorithmsLengthsAndOptions()
    {
        var data = new TheoryData<string, int, bool>();
        foreach (var algorithm in OptimizerAlgorithms)
        {
            foreach (var length in new[] { 1, 7, 1000, 100_003 })
            {
                data.Add(algorithm, length, false);
            }

            data.Add(algorithm, 1000, true);
        }

        return data;
    }

    /// <summary>
    /// Three consecutive steps move the global model and the moments as the reference does, with the documented
    /// defaults (written out here as numbers) or with every option set.
    /// </summary>
    [Theory]
    [MemberData(nameof(AlgorithmsLengthsAndOptions))]
    public void Three_steps_match_the_reference(string algorithm, int length, bool customOptions)
    {
        var options = customOptions ? CustomOptions : new ServerOptimizerOptions();
        var random = new Random(length * 31 + algorithm.Length);
        var global = Reference.RandomVector(random, length);
        var optimizer = ServerOptimizers.Create(algorithm, options, length);
        var reference = customOptions
            ? new ReferenceOptimizer(algorithm, length, eta: 0.5, momentum: 0.5, beta1: 0.7, beta2: 0.9, tau: 0.05)
            : new ReferenceOptimizer(algorithm, length, eta: algorithm is "fedavg" or "fedavgm" ? 1.0 : 0.1, momentum: 0.9, beta1: 0.9, beta2: 0.99, tau: 1e-3);
        var expected = Reference.ToDouble(global);

        for (var step = 1; step <= 3; step++)
        {
            var meanDelta = Reference.RandomVector(random, length, scale: 0.1);
            optimizer.Step(global, meanDelta);
            reference.Step(expected, Reference.ToDouble(meanDelta));

            Reference.AssertClose(expected, global, 1e-6);
        }

        var state = optimizer.ExportState();
        Assert.Equal(algorithm, state.Algorithm);
        Assert.Equal(3, state.Steps);
        Assert.Equal(reference.FirstMoment is null, state.FirstMoment is null);
        Assert.Equal(reference.SecondMoment is null, state.SecondMoment is null);
        if (reference.FirstMoment is not null)
        {
            Reference.AssertClose(reference.FirstMoment, state.FirstMoment, 1e-6, Reference.MaxMagnitude(reference.FirstMoment));
        }

        if (reference.SecondMoment is not null)
        {
            Reference.AssertClose(reference.SecondMoment, state.SecondMoment, 1e-6, Reference.MaxMagnitude(reference.SecondMoment));
        }
    }

    /// <summary>
    /// The one-pass step from a round's sum, whole or in parts, gives exactly (bit for bit) what adding the parts,
    /// scaling the sum, copying the global model and stepping it gives, over two steps (so the moments carry over), and
    /// changes no input.
    /// </summary>
    [Theory]
    [MemberData(nameof(AlgorithmsLengthsAndOptions))]
    public void The_one_pass_step_from_a_sum_equals_scaling_copying_and_stepping(string algorithm, int length, bool customOptions)
    {
        var options = customOptions ? CustomOptions : new ServerOptimizerOptions();
        var random = new Random(length * 17 + algorithm.Length);
        var fused = ServerOptimizers.Create(algorithm, options, length);
        var separate = ServerOptimizers.Create(algorithm, options, length);
        var global = Reference.RandomVector(random, length);
        for (var step = 0; step < 2; step++)
        {
            var sum = Reference.RandomVector(random, length, scale: 3);
            var (globalBefore, sumBefore) = (global.ToArray(), sum.ToArray());
            const float Scale = 1f / 37;

            // In parts (as a hierarchy hands them up) on the second step.
            var parts = step == 0 ? [sum] : new[] { sum, Reference.RandomVector(random, length, scale: 3), Reference.RandomVector(random, length, scale: 3) };
            var next = new float[length];
            fused.Step(global, [.. parts.Select(p => (ReadOnlyMemory<float>)p)], Scale, next);

            var mean = parts[0].ToArray();
            foreach (var part in parts.Skip(1))
            {
                TensorPrimitives.Add(mean, part, mean);
            }

            AggregationKernels.Scale(mean, Scale);
            var expected = global.ToArray();
            separate.Step(expected, mean);

            Assert.Equal(expected, next);
            Assert.Equal(globalBefore, global);
            Assert.Equal(sumBefore, sum);
            global = next;
        }

        Assert.Equal(separate.ExportState().FirstMoment, fused.ExportState().FirstMoment);
        Assert.Equal(separate.ExportState().SecondMoment, fused.ExportState().SecondMoment);
    }

    /// <summary>
    /// The step written over its first sum (as the job does when it holds the only reference to it) gives bit for bit
    /// what it gives into a buffer of its own, over two steps, and leaves the other sums and the global model alone.
    /// </summary>
    [Theory]
    [MemberData(nameof(AlgorithmsLengthsAndOptions))]
    public void The_step_over_its_first_sum_equals_the_step_into_its_own_buffer(string algorithm, int length, bool customOptions)
    {
        var options = customOptions ? CustomOptions : new ServerOptimizerOptions();
        var random = new Random((length * 31) + algorithm.Length);
        var inPlace = ServerOptimizers.Create(algorithm, options, length);
        var apart = ServerOptimizers.Create(algorithm, options, length);
        var global = Reference.RandomVector(random, length);
        for (var step = 0; step < 2; step++)
        {
            var parts = new[] { Reference.RandomVector(random, length, scale: 3), Reference.RandomVector(random, length, scale: 3) };
            var (globalBefore, secondBefore) = (global.ToArray(), parts[1].ToArray());
            var expected = new float[length];
            apart.Step(global, [.. parts.Select(p => (ReadOnlyMemory<float>)p)], 1f / 11, expected);

            inPlace.Step(global, [.. parts.Select(p => (ReadOnlyMemory<float>)p)], 1f / 11, parts[0]);
            Assert.Equal(expected, parts[0]);
            Assert.Equal(globalBefore, global);
            Assert.Equal(secondBefore, parts[1]);
            global = expected;
        }
    }

    /// <summary>FedAvg with η = 1 turns the example-weighted mean delta into the example-weighted average of the client models.</summary>
    [Fact]
    public void FedAvg_with_rate_one_gives_the_weighted_average_of_client_models()
    {
        const int Length = 1000;
        var random = new Random(7);
        var global = Reference.RandomVector(random, Length);
        var examples = new[] { 10, 250, 3, 1200, 77 };
        var clientModels = examples.Select(_ => Reference.RandomVector(random, Length)).ToArray();
        var expected = new double[Length];
        for (var p = 0; p < Length; p++)
        {
            for (var i = 0; i < examples.Length; i++)
            {
                expected[p] += examples[i] * (double)clientModels[i][p];
            }

            expected[p] /= examples.Sum();
        }

        var meanDelta = new float[Length];
        for (var i = 0; i < examples.Length; i++)
        {
            var delta = new float[Length];
            for (var p = 0; p < Length; p++)
            {
                delta[p] = clientModels[i][p] - global[p];
            }

            AggregationKernels.Accumulate(meanDelta, delta, examples[i]);
        }

        AggregationKernels.Scale(meanDelta, 1f / examples.Sum());
        ServerOptimizers.Create("fedavg", new() { ServerLearningRate = 1 }, Length).Step(global, meanDelta);

        Reference.AssertClose(expected, global, 1e-6);
    }

    /// <summary>
    /// A state exported after two steps, serialized and imported into a fresh optimizer, continues exactly as the
    /// original does: the third step gives the same global model to the bit, and the same state.
    /// </summary>
    [Theory]
    [InlineData("fedavg")]
    [InlineData("fedavgm")]
    [InlineData("fedadam")]
    [InlineData("fedyogi")]
    [InlineData("fedadagrad")]
    public void Imported_state_continues_as_the_original(string algorithm)
    {
        const int Length = 2500;
        var random = new Random(algorithm.GetHashCode(StringComparison.Ordinal));
        var original = ServerOptimizers.Create(algorithm, new(), Length);
        var global = Reference.RandomVector(random, Length);
        original.Step(global, Reference.RandomVector(random, Length, scale: 0.1));
        original.Step(global, Reference.RandomVector(random, Length, scale: 0.1));

        var saved = LiflSerializer.Deserialize<ServerOptimizerState>(LiflSerializer.SerializeToArray(original.ExportState()));
        var resumed = ServerOptimizers.Create(algorithm, new(), Length);
        resumed.ImportState(saved);

        var lastDelta = Reference.RandomVector(random, Length, scale: 0.1);
        var resumedGlobal = global.ToArray();
        original.Step(global, lastDelta);
        resumed.Step(resumedGlobal, lastDelta);

        Assert.Equal(global, resumedGlobal);
        var expectedState = original.ExportState();
        var actualState = resumed.ExportState();
        Assert.Equal(3, actualState.Steps);
        Assert.Equal(expectedState.Algorithm, actualState.Algorithm);
        Assert.Equal(expectedState.FirstMoment, actualState.FirstMoment);
        Assert.Equal(expectedState.SecondMoment, actualState.SecondMoment);
    }

    /// <summary>Exported and imported states are copies: changing them later does not reach the optimizer.</summary>
    [Fact]
    public void States_are_copied_in_and_out()
    {
        var optimizer = ServerOptimizers.Create("fedadam", new(), 3);
        float[] global = [0, 0, 0];
        optimizer.Step(global, [1, 2, 3]);

        var exported = optimizer.ExportState();
        var firstMoment = exported.FirstMoment!.ToArray();
        exported.FirstMoment![0] = 1000;
        Assert.Equal(firstMoment, optimizer.ExportState().FirstMoment);

        var imported = new ServerOptimizerState("fedadam", 5, [1, 1, 1], [4, 4, 4]);
        optimizer.ImportState(imported);
        imported.SecondMoment![0] = 1000;
        Assert.Equal([4f, 4f, 4f], optimizer.ExportState().SecondMoment!);
        Assert.Equal(5, optimizer.ExportState().Steps);
    }

    /// <summary>A state of another algorithm, of another length, or lacking or adding a moment is refused, saying which.</summary>
    [Fact]
    public void Mismatched_states_are_refused_with_the_reason()
    {
        var yogi = ServerOptimizers.Create("fedyogi", new(), 7);
        var otherAlgorithm = Assert.Throws<ArgumentException>(() => yogi.ImportState(new("fedadam", 1, new float[7], new float[7])));
        Assert.Contains("The state is of algorithm 'fedadam'; this optimizer is 'fedyogi'", otherAlgorithm.Message);
        var otherLength = Assert.Throws<ArgumentException>(() => yogi.ImportState(new("fedyogi", 1, new float[7], new float[5])));
        Assert.Contains("The state's second moment has 5 values; the model has 7", otherLength.Message);
        var missing = Assert.Throws<ArgumentException>(() => yogi.ImportState(new("fedyogi", 1, null, new float[7])));
        Assert.Contains("The state has no first moment; fedyogi needs one of 7 values", missing.Message);
        var negative = Assert.Throws<ArgumentException>(() => yogi.ImportState(new("fedyogi", -1, new float[7], new float[7])));
        Assert.Contains("-1 steps", negative.Message);

        var fedAvg = ServerOptimizers.Create("fedavg", new(), 7);
        var extra = Assert.Throws<ArgumentException>(() => fedAvg.ImportState(new("fedavg", 1, new float[7], null)));
        Assert.Contains("The state has a first moment, but fedavg keeps none", extra.Message);

        // A refused state leaves the optimizer as it was.
        Assert.Equal(0, yogi.ExportState().Steps);
    }

    /// <summary>Names are matched in any case; FedProx and FedBuff average on the server as FedAvg does.</summary>
    [Theory]
    [InlineData("FedAvg", "fedavg")]
    [InlineData("FEDAVGM", "fedavgm")]
    [InlineData("FedAdam", "fedadam")]
    [InlineData("fedYogi", "fedyogi")]
    [InlineData("FedAdagrad", "fedadagrad")]
    [InlineData("FedProx", "fedavg")]
    [InlineData("fedbuff", "fedavg")]
    public void Names_are_matched_in_any_case(string requested, string created) =>
        Assert.Equal(created, ServerOptimizers.Create(requested, new(), 1).Name);

    /// <summary>An unknown algorithm is refused with the known names; bad options with the bad setting; bad lengths with both lengths.</summary>
    [Fact]
    public void Bad_arguments_are_refused_with_the_detail()
    {
        var unknown = Assert.Throws<ArgumentException>(() => ServerOptimizers.Create("fedsgd", new(), 10));
        Assert.Contains("There is no server optimizer named 'fedsgd'; the known ones are fedavg, fedavgm, fedadam, fedyogi, fedadagrad, fedprox, fedbuff", unknown.Message);

        Assert.Contains("Beta2 is 1: it must be at least 0 and below 1",
            Assert.Throws<ArgumentException>(() => ServerOptimizers.Create("fedadam", new() { Beta2 = 1 }, 10)).Message);
        Assert.Contains("ServerLearningRate is 0: it must be positive and finite",
            Assert.Throws<ArgumentException>(() => ServerOptimizers.Create("fedavg", new() { ServerLearningRate = 0 }, 10)).Message);
        Assert.Contains("Momentum is -0.1",
            Assert.Throws<ArgumentException>(() => ServerOptimizers.Create("fedavgm", new() { Momentum = -0.1 }, 10)).Message);
        Assert.Contains("Tau is NaN",
            Assert.Throws<ArgumentException>(() => ServerOptimizers.Create("fedyogi", new() { Tau = double.NaN }, 10)).Message);
        Assert.Equal("parameters", Assert.Throws<ArgumentOutOfRangeException>(() => ServerOptimizers.Create("fedavg", new(), 0)).ParamName);

        var optimizer = ServerOptimizers.Create("fedadam", new(), 10);
        Assert.Contains("The meanDelta has 9 values where 10 are expected",
            Assert.Throws<ArgumentException>(() => optimizer.Step(new float[10], new float[9])).Message);
        Assert.Contains("The global has 11 values where 10 are expected",
            Assert.Throws<ArgumentException>(() => optimizer.Step(new float[11], new float[10])).Message);
        Assert.Equal(0, optimizer.ExportState().Steps);
    }

    /// <summary>Algorithm 2 of Reddi et al. 2021, as Flower's strategies write it, element by element in double.</summary>
    private sealed class ReferenceOptimizer(string algorithm, int length, double eta, double momentum, double beta1, double beta2, double tau)
    {
        public double[]? FirstMoment { get; } = algorithm == "fedavg" ? null : new double[length];

        public double[]? SecondMoment { get; } = algorithm is "fedavg" or "fedavgm" ? null : new double[length];

        public void Step(double[] global, double[] delta)
        {
            for (var i = 0; i < global.Length; i++)
            {
                var d = delta[i];
                switch (algorithm)
                {
                    case "fedavg":
                        global[i] += eta * d;
                        break;
                    case "fedavgm":
                        FirstMoment![i] = momentum * FirstMoment[i] + d;
                        global[i] += eta * FirstMoment[i];
                        break;
                    default:
                        var m = FirstMoment![i] = beta1 * FirstMoment[i] + (1 - beta1) * d;
                        var v = SecondMoment![i];
                        SecondMoment[i] = v = algorithm switch
                        {
                            "fedadam" => beta2 * v + (1 - beta2) * d * d,
                            "fedyogi" => v - (1 - beta2) * d * d * Math.Sign(v - d * d),
                            "fedadagrad" => v + d * d,
                            _ => throw new ArgumentException(algorithm),
                        };
                        global[i] += eta * m / (Math.Sqrt(v) + tau);
                        break;
                }
            }
        }
    }
}
