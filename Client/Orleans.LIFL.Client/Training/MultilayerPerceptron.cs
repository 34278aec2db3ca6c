using System.Numerics.Tensors;
using Orleans.LIFL.Grains.FL;

namespace Orleans.LIFL.Client.Training;

/// <summary>
/// A one-hidden-layer perceptron on Fashion-MNIST's pixels: logits = W2·ReLU(W1·x + b1) + b2, with "fc1.weight"
/// [hidden, 784], "fc1.bias" [hidden], "fc2.weight" [10, hidden] and "fc2.bias" [10].
/// </summary>
public sealed class MultilayerPerceptron : IClassifier, IFeedForwardNetwork
{
    public const int DefaultHidden = 128;

    private const int Features = FashionMnist.FeatureCount;
    private const int Classes = FashionMnist.Classes;

    private readonly Layout _layout;

    public MultilayerPerceptron(int hidden = DefaultHidden)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(hidden, 1);
        Hidden = hidden;
        Spec = new ModelSpec(
        [
            new TensorSpec("fc1.weight", [hidden, Features]),
            new TensorSpec("fc1.bias", [hidden]),
            new TensorSpec("fc2.weight", [Classes, hidden]),
            new TensorSpec("fc2.bias", [Classes]),
        ]);
        _layout = new Layout(Spec.Locate("fc1.weight"), Spec.Locate("fc1.bias"), Spec.Locate("fc2.weight"), Spec.Locate("fc2.bias"));
    }

    /// <summary>The width of the hidden layer.</summary>
    public int Hidden { get; }

    public ModelSpec Spec { get; }

    int IFeedForwardNetwork.Features => Features;

    int IFeedForwardNetwork.Classes => Classes;

    /// <summary>
    /// Uniform weights drawn from <paramref name="seed"/>, and zero biases. fc1 feeds a ReLU and gets He et al.'s
    /// (2015) variance of 2/fan-in, so that the activations neither vanish nor grow through it; fc2 feeds the softmax
    /// directly and gets 1/fan-in.
    /// </summary>
    public void Initialize(Span<float> parameters, int seed)
    {
        FeedForwardClassifier.CheckParameters(this, parameters.Length);
        var random = new Random(seed);
        parameters.Clear();
        FillUniform(_layout.Slice(parameters, _layout.Fc1Weight), MathF.Sqrt(6f / Features), random);
        FillUniform(_layout.Slice(parameters, _layout.Fc2Weight), MathF.Sqrt(3f / Hidden), random);
    }

    public TrainingResult Train(Span<float> parameters, LabeledImages data, ReadOnlySpan<int> indices, TrainingOptions options) =>
        FeedForwardClassifier.Train(this, parameters, data, indices, options);

    public double Accuracy(ReadOnlySpan<float> parameters, LabeledImages data) => FeedForwardClassifier.Accuracy(this, parameters, data);

    public double Loss(ReadOnlySpan<float> parameters, LabeledImages data, ReadOnlySpan<int> indices) =>
        FeedForwardClassifier.Loss(this, parameters, data, indices);

    /// <summary>The mean loss over <paramref name="batch"/>; its gradient goes into <paramref name="gradient"/>.</summary>
    internal double LossAndGradient(ReadOnlySpan<float> parameters, LabeledImages data, ReadOnlySpan<int> batch, Span<float> gradient) =>
        FeedForwardClassifier.LossAndGradient(this, parameters, data, batch, gradient);

    IBatchPass IFeedForwardNetwork.CreatePass(int capacity) => new Pass(_layout, Hidden, capacity);

    /// <summary>A uniform draw on [−bound, bound), whose variance is bound²/3.</summary>
    private static void FillUniform(Span<float> values, float bound, Random random)
    {
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (2 * random.NextSingle() - 1) * bound;
        }
    }

    /// <summary>Where each tensor sits in the flat vector.</summary>
    private sealed record Layout((int Offset, int Length) Fc1Weight, (int Offset, int Length) Fc1Bias, (int Offset, int Length) Fc2Weight, (int Offset, int Length) Fc2Bias)
    {
        public Span<float> Slice(Span<float> vector, (int Offset, int Length) tensor) => vector.Slice(tensor.Offset, tensor.Length);

        public ReadOnlySpan<float> Slice(ReadOnlySpan<float> vector, (int Offset, int Length) tensor) => vector.Slice(tensor.Offset, tensor.Length);
    }

    /// <summary>Holds the hidden activations of a batch for the backward pass, and their gradient.</summary>
    private sealed class Pass(Layout layout, int hidden, int capacity) : IBatchPass
    {
        private readonly float[] _activations = new float[capacity * hidden];
        private readonly float[] _activationGradient = new float[capacity * hidden];

        public void Forward(ReadOnlySpan<float> parameters, ReadOnlySpan<float> inputs, int count, Span<float> logits)
        {
            var w1 = layout.Slice(parameters, layout.Fc1Weight);
            var b1 = layout.Slice(parameters, layout.Fc1Bias);
            var w2 = layout.Slice(parameters, layout.Fc2Weight);
            var b2 = layout.Slice(parameters, layout.Fc2Bias);
            for (var i = 0; i < count; i++)
            {
                var input = inputs.Slice(i * Features, Features);
                var activation = _activations.AsSpan(i * hidden, hidden);
                for (var j = 0; j < hidden; j++)
                {
                    activation[j] = TensorPrimitives.Dot(input, w1.Slice(j * Features, Features));
                }

                TensorPrimitives.Add(activation, b1, activation);
                TensorPrimitives.Max(activation, 0f, activation);
                var output = logits.Slice(i * Classes, Classes);
                for (var c = 0; c < Classes; c++)
                {
                    output[c] = TensorPrimitives.Dot(activation, w2.Slice(c * hidden, hidden)) + b2[c];
                }
            }
        }

        public void Backward(ReadOnlySpan<float> parameters, ReadOnlySpan<float> inputs, int count, ReadOnlySpan<float> logitGradient, Span<float> gradient)
        {
            var w2 = layout.Slice(parameters, layout.Fc2Weight);
            var w1Gradient = layout.Slice(gradient, layout.Fc1Weight);
            var b1Gradient = layout.Slice(gradient, layout.Fc1Bias);
            var w2Gradient = layout.Slice(gradient, layout.Fc2Weight);
            var b2Gradient = layout.Slice(gradient, layout.Fc2Bias);
            gradient.Clear();

            // fc2, and the gradient reaching the hidden layer through it, masked by where the ReLU was active.
            for (var i = 0; i < count; i++)
            {
                var activation = _activations.AsSpan(i * hidden, hidden);
                var activationGradient = _activationGradient.AsSpan(i * hidden, hidden);
                activationGradient.Clear();
                for (var c = 0; c < Classes; c++)
                {
                    var d = logitGradient[i * Classes + c];
                    var w2GradientRow = w2Gradient.Slice(c * hidden, hidden);
                    TensorPrimitives.MultiplyAdd(activation, d, w2GradientRow, w2GradientRow);
                    TensorPrimitives.MultiplyAdd(w2.Slice(c * hidden, hidden), d, activationGradient, activationGradient);
                    b2Gradient[c] += d;
                }

                for (var j = 0; j < hidden; j++)
                {
                    if (activation[j] <= 0)
                    {
                        activationGradient[j] = 0;
                    }
                }
            }

            // fc1, one weight row at a time so that it stays in L1 while the batch's inputs stream past. Examples for
            // which the unit was inactive (about half) contribute nothing and are skipped.
            for (var j = 0; j < hidden; j++)
            {
                var w1GradientRow = w1Gradient.Slice(j * Features, Features);
                for (var i = 0; i < count; i++)
                {
                    var d = _activationGradient[i * hidden + j];
                    if (d != 0)
                    {
                        TensorPrimitives.MultiplyAdd(inputs.Slice(i * Features, Features), d, w1GradientRow, w1GradientRow);
                        b1Gradient[j] += d;
                    }
                }
            }
        }
    }
}
