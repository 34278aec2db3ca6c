using System.Numerics.Tensors;
using Orleans.LIFL.Client.Training;
using Xunit;

namespace Orleans.LIFL.Client.Tests.Training;

/// <summary>The backward passes against central finite differences of the loss, on a tiny random problem.</summary>
public sealed class GradientCheckTests
{
    private const int Examples = 4;

    // Large enough that float rounding in the loss (~1e-7) is well below the differences, small enough that the
    // truncation error, O(Step²), is too.
    private const float Step = 1e-2f;

    /// <summary>Softmax regression's gradient, at random weights, is the loss's.</summary>
    [Fact]
    public void Softmax_regression_gradient_matches_finite_differences()
    {
        var model = new SoftmaxRegression();
        var (data, parameters) = RandomProblem(model.Spec.Parameters, seed: 1);

        var relativeError = RelativeError(model, model.LossAndGradient, data, parameters);

        Assert.InRange(relativeError, 0, 1e-3);
    }

    /// <summary>
    /// The perceptron's gradient, through active and inactive hidden units, is the loss's. The problem is checked to
    /// have both kinds of unit, and no pre-activation within reach of the ReLU's kink, where differences would be wrong.
    /// </summary>
    [Fact]
    public void Perceptron_gradient_matches_finite_differences()
    {
        var model = new MultilayerPerceptron(hidden: 3);
        var (data, parameters) = RandomProblem(model.Spec.Parameters, seed: 2);
        var weights = model.Spec.Slice(parameters, "fc1.weight");
        var biases = model.Spec.Slice(parameters, "fc1.bias");
        var preActivations = new List<float>();
        for (var i = 0; i < Examples; i++)
        {
            for (var j = 0; j < 3; j++)
            {
                preActivations.Add(TensorPrimitives.Dot(data.Example(i), weights.Slice(j * 784, 784)) + biases[j]);
            }
        }

        Assert.Contains(preActivations, z => z > 0);
        Assert.Contains(preActivations, z => z < 0);
        Assert.All(preActivations, z => Assert.True(Math.Abs(z) > 10 * Step, $"pre-activation {z} is near the kink"));

        var relativeError = RelativeError(model, model.LossAndGradient, data, parameters);

        Assert.InRange(relativeError, 0, 1e-3);
    }

    private delegate double LossAndGradient(ReadOnlySpan<float> parameters, LabeledImages data, ReadOnlySpan<int> batch, Span<float> gradient);

    /// <summary>‖analytic − numeric‖ / ‖numeric‖ over all parameters, after checking that the analytic loss is the model's.</summary>
    private static double RelativeError(IClassifier model, LossAndGradient lossAndGradient, LabeledImages data, float[] parameters)
    {
        int[] batch = [.. Enumerable.Range(0, Examples)];
        var analytic = new float[parameters.Length];
        var loss = lossAndGradient(parameters, data, batch, analytic);
        Assert.Equal(model.Loss(parameters, data, batch), loss, 1e-12);

        var numeric = new double[parameters.Length];
        for (var k = 0; k < parameters.Length; k++)
        {
            var original = parameters[k];
            var up = parameters[k] = original + Step;
            var lossUp = model.Loss(parameters, data, batch);
            var down = parameters[k] = original - Step;
            var lossDown = model.Loss(parameters, data, batch);
            parameters[k] = original;
            numeric[k] = (lossUp - lossDown) / ((double)up - down);
        }

        var difference = Math.Sqrt(numeric.Select((n, k) => (analytic[k] - n) * (analytic[k] - n)).Sum());
        return difference / Math.Sqrt(numeric.Sum(n => n * n));
    }

    /// <summary>A few examples of random features in [0, 1] and random labels, and parameters uniform in [−0.1, 0.1].</summary>
    private static (LabeledImages Data, float[] Parameters) RandomProblem(int parameterCount, int seed)
    {
        var random = new Random(seed);
        var features = new float[Examples * 784];
        for (var i = 0; i < features.Length; i++)
        {
            features[i] = random.NextSingle();
        }

        var labels = new byte[Examples];
        for (var i = 0; i < labels.Length; i++)
        {
            labels[i] = (byte)random.Next(10);
        }

        var parameters = new float[parameterCount];
        for (var i = 0; i < parameters.Length; i++)
        {
            parameters[i] = (2 * random.NextSingle() - 1) * 0.1f;
        }

        return (new LabeledImages(features, labels, 784, 10), parameters);
    }
}
