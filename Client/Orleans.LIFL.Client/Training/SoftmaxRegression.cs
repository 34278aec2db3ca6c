using System.Numerics.Tensors;
using Orleans.LIFL.Grains.FL;

namespace Orleans.LIFL.Client.Training;

/// <summary>
/// Multinomial logistic regression on Fashion-MNIST's pixels: logits = W·x + b, with "linear.weight" [10, 784] and
/// "linear.bias" [10].
/// </summary>
public sealed class SoftmaxRegression : IClassifier, IFeedForwardNetwork, IBatchPass
{
    private const int Features = FashionMnist.FeatureCount;
    private const int Classes = FashionMnist.Classes;

    private readonly int _weightOffset;
    private readonly int _biasOffset;

    public SoftmaxRegression()
    {
        Spec = new ModelSpec([new TensorSpec("linear.weight", [Classes, Features]), new TensorSpec("linear.bias", [Classes])]);
        _weightOffset = Spec.Locate("linear.weight").Offset;
        _biasOffset = Spec.Locate("linear.bias").Offset;
    }

    public ModelSpec Spec { get; }

    int IFeedForwardNetwork.Features => Features;

    int IFeedForwardNetwork.Classes => Classes;

    /// <summary>Zeros: the loss is convex, so the start needs no symmetry breaking and <paramref name="seed"/> is not used.</summary>
    public void Initialize(Span<float> parameters, int seed)
    {
        FeedForwardClassifier.CheckParameters(this, parameters.Length);
        parameters.Clear();
    }

    public TrainingResult Train(Span<float> parameters, LabeledImages data, ReadOnlySpan<int> indices, TrainingOptions options) =>
        FeedForwardClassifier.Train(this, parameters, data, indices, options);

    public double Accuracy(ReadOnlySpan<float> parameters, LabeledImages data) => FeedForwardClassifier.Accuracy(this, parameters, data);

    public double Loss(ReadOnlySpan<float> parameters, LabeledImages data, ReadOnlySpan<int> indices) =>
        FeedForwardClassifier.Loss(this, parameters, data, indices);

    /// <summary>The mean loss over <paramref name="batch"/>; its gradient goes into <paramref name="gradient"/>.</summary>
    internal double LossAndGradient(ReadOnlySpan<float> parameters, LabeledImages data, ReadOnlySpan<int> batch, Span<float> gradient) =>
        FeedForwardClassifier.LossAndGradient(this, parameters, data, batch, gradient);

    // The model keeps nothing between its forward and backward passes, so it is its own pass.
    IBatchPass IFeedForwardNetwork.CreatePass(int capacity) => this;

    void IBatchPass.Forward(ReadOnlySpan<float> parameters, ReadOnlySpan<float> inputs, int count, Span<float> logits)
    {
        var weights = parameters.Slice(_weightOffset, Classes * Features);
        var bias = parameters.Slice(_biasOffset, Classes);
        for (var i = 0; i < count; i++)
        {
            var input = inputs.Slice(i * Features, Features);
            var output = logits.Slice(i * Classes, Classes);
            for (var c = 0; c < Classes; c++)
            {
                output[c] = TensorPrimitives.Dot(input, weights.Slice(c * Features, Features)) + bias[c];
            }
        }
    }

    void IBatchPass.Backward(ReadOnlySpan<float> parameters, ReadOnlySpan<float> inputs, int count, ReadOnlySpan<float> logitGradient, Span<float> gradient)
    {
        var weightGradient = gradient.Slice(_weightOffset, Classes * Features);
        var biasGradient = gradient.Slice(_biasOffset, Classes);
        weightGradient.Clear();
        biasGradient.Clear();
        for (var c = 0; c < Classes; c++)
        {
            var row = weightGradient.Slice(c * Features, Features);
            for (var i = 0; i < count; i++)
            {
                var d = logitGradient[i * Classes + c];
                TensorPrimitives.MultiplyAdd(inputs.Slice(i * Features, Features), d, row, row);
                biasGradient[c] += d;
            }
        }
    }
}
