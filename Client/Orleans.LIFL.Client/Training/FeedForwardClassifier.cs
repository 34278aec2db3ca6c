using System.Numerics.Tensors;

namespace Orleans.LIFL.Client.Training;

/// <summary>
/// <see cref="IClassifier"/>'s training and evaluation for any <see cref="IFeedForwardNetwork"/>: batches are copied
/// into one contiguous block, so that the network's passes are a few tight loops over rows. Every buffer is allocated
/// once per call.
/// </summary>
internal static class FeedForwardClassifier
{
    // Large enough that per-chunk overheads vanish, small enough that a chunk's inputs stay in the L2 cache.
    private const int EvaluationChunk = 256;

    public static void CheckParameters(IFeedForwardNetwork network, int length)
    {
        var expected = network.Spec.Parameters;
        if (length != expected)
        {
            throw new ArgumentException($"The model has {expected:N0} parameters; the vector holds {length:N0}.", "parameters");
        }
    }

    public static TrainingResult Train(IFeedForwardNetwork network, Span<float> parameters, LabeledImages data, ReadOnlySpan<int> indices, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        CheckArguments(network, parameters.Length, data, indices);
        options.Validate(parameters.Length);

        var capacity = Math.Min(options.BatchSize, indices.Length);
        var pass = network.CreatePass(capacity);
        var inputs = new float[capacity * data.FeatureCount];
        var labels = new byte[capacity];
        var logits = new float[capacity * data.Classes];
        var gradient = new float[parameters.Length];
        var order = indices.ToArray();
        var global = options.GlobalParameters.Span;
        var random = new Random(options.Seed);
        var lossSum = 0.0;
        for (var epoch = 0; epoch < options.Epochs; epoch++)
        {
            random.Shuffle(order);
            for (var start = 0; start < order.Length; start += capacity)
            {
                var batch = order.AsSpan(start, Math.Min(capacity, order.Length - start));
                Gather(data, batch, inputs, labels);
                lossSum += LossSumAndGradient(pass, parameters, inputs, labels.AsSpan(0, batch.Length), data.Classes, logits, gradient);
                if (options.ProximalMu > 0)
                {
                    // The gradient of (μ/2)·‖w − w_global‖² is μ·(w − w_global).
                    TensorPrimitives.MultiplyAdd(parameters, options.ProximalMu, gradient, gradient);
                    TensorPrimitives.MultiplyAdd(global, -options.ProximalMu, gradient, gradient);
                }

                TensorPrimitives.MultiplyAdd(gradient, -options.LearningRate, parameters, parameters);
            }
        }

        var seen = (long)order.Length * options.Epochs;
        return new TrainingResult(seen, lossSum / seen);
    }

    public static double Accuracy(IFeedForwardNetwork network, ReadOnlySpan<float> parameters, LabeledImages data)
    {
        CheckArguments(network, parameters.Length, data);
        if (data.Count == 0)
        {
            throw new ArgumentException("There are no examples to measure the accuracy on.", nameof(data));
        }

        var capacity = Math.Min(EvaluationChunk, data.Count);
        var pass = network.CreatePass(capacity);
        var logits = new float[capacity * data.Classes];
        var correct = 0;
        for (var start = 0; start < data.Count; start += capacity)
        {
            // The examples are already contiguous: the network reads them in place.
            var count = Math.Min(capacity, data.Count - start);
            var inputs = data.Features.AsSpan(start * data.FeatureCount, count * data.FeatureCount);
            pass.Forward(parameters, inputs, count, logits);
            for (var i = 0; i < count; i++)
            {
                if (TensorPrimitives.IndexOfMax(logits.AsSpan(i * data.Classes, data.Classes)) == data.Labels[start + i])
                {
                    correct++;
                }
            }
        }

        return (double)correct / data.Count;
    }

    public static double Loss(IFeedForwardNetwork network, ReadOnlySpan<float> parameters, LabeledImages data, ReadOnlySpan<int> indices)
    {
        CheckArguments(network, parameters.Length, data, indices);
        var capacity = Math.Min(EvaluationChunk, indices.Length);
        var pass = network.CreatePass(capacity);
        var inputs = new float[capacity * data.FeatureCount];
        var labels = new byte[capacity];
        var logits = new float[capacity * data.Classes];
        var lossSum = 0.0;
        for (var start = 0; start < indices.Length; start += capacity)
        {
            var batch = indices.Slice(start, Math.Min(capacity, indices.Length - start));
            Gather(data, batch, inputs, labels);
            pass.Forward(parameters, inputs, batch.Length, logits);
            lossSum += SoftmaxCrossEntropy.LossSumAndGradient(logits, labels.AsSpan(0, batch.Length), data.Classes, scale: 1);
        }

        return lossSum / indices.Length;
    }

    /// <summary>The mean loss over <paramref name="batch"/>, with its gradient written into <paramref name="gradient"/>.</summary>
    public static double LossAndGradient(IFeedForwardNetwork network, ReadOnlySpan<float> parameters, LabeledImages data, ReadOnlySpan<int> batch, Span<float> gradient)
    {
        CheckArguments(network, parameters.Length, data, batch);
        CheckParameters(network, gradient.Length);
        var inputs = new float[batch.Length * data.FeatureCount];
        var labels = new byte[batch.Length];
        Gather(data, batch, inputs, labels);
        var logits = new float[batch.Length * data.Classes];
        var pass = network.CreatePass(batch.Length);
        return LossSumAndGradient(pass, parameters, inputs, labels, data.Classes, logits, gradient) / batch.Length;
    }

    /// <summary>The summed loss of the batch; <paramref name="gradient"/> receives the gradient of the mean loss.</summary>
    private static double LossSumAndGradient(
        IBatchPass pass, ReadOnlySpan<float> parameters, ReadOnlySpan<float> inputs, ReadOnlySpan<byte> labels, int classes, Span<float> logits, Span<float> gradient)
    {
        var count = labels.Length;
        pass.Forward(parameters, inputs, count, logits);
        var logitGradient = logits[..(count * classes)];
        var lossSum = SoftmaxCrossEntropy.LossSumAndGradient(logitGradient, labels, classes, scale: 1f / count);
        pass.Backward(parameters, inputs, count, logitGradient, gradient);
        return lossSum;
    }

    private static void Gather(LabeledImages data, ReadOnlySpan<int> batch, Span<float> inputs, Span<byte> labels)
    {
        for (var i = 0; i < batch.Length; i++)
        {
            data.Example(batch[i]).CopyTo(inputs.Slice(i * data.FeatureCount, data.FeatureCount));
            labels[i] = data.Labels[batch[i]];
        }
    }

    private static void CheckArguments(IFeedForwardNetwork network, int parameters, LabeledImages data)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckParameters(network, parameters);
        if (data.FeatureCount != network.Features || data.Classes != network.Classes)
        {
            throw new ArgumentException(
                $"The model reads {network.Features} features and tells {network.Classes} classes apart; the data has {data.FeatureCount} features and {data.Classes} classes.",
                nameof(data));
        }
    }

    private static void CheckArguments(IFeedForwardNetwork network, int parameters, LabeledImages data, ReadOnlySpan<int> indices)
    {
        CheckArguments(network, parameters, data);
        if (indices.IsEmpty)
        {
            throw new ArgumentException("There are no examples.", nameof(indices));
        }

        for (var i = 0; i < indices.Length; i++)
        {
            if ((uint)indices[i] >= (uint)data.Count)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), $"Index {indices[i]} (position {i}) is outside the {data.Count:N0} examples.");
            }
        }
    }
}
