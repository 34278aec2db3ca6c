using Orleans.LIFL.Grains.FL;

namespace Orleans.LIFL.Client.Training;

/// <summary>
/// A classification model trained on the CPU. The model itself is stateless: its parameters are a flat vector in
/// <see cref="Spec"/>'s layout that the caller owns, so one instance serves any number of simulated clients at once.
/// </summary>
public interface IClassifier
{
    /// <summary>The model's tensors, in the order of the flat parameter vector.</summary>
    ModelSpec Spec { get; }

    /// <summary>Writes starting weights, a function of <paramref name="seed"/> alone, into <paramref name="parameters"/>.</summary>
    void Initialize(Span<float> parameters, int seed);

    /// <summary>
    /// Runs mini-batch SGD on softmax cross-entropy over the examples at <paramref name="indices"/>, updating
    /// <paramref name="parameters"/> in place.
    /// </summary>
    TrainingResult Train(Span<float> parameters, LabeledImages data, ReadOnlySpan<int> indices, TrainingOptions options);

    /// <summary>The fraction of all the examples of <paramref name="data"/> whose most probable class is their label.</summary>
    double Accuracy(ReadOnlySpan<float> parameters, LabeledImages data);

    /// <summary>The mean cross-entropy over the examples at <paramref name="indices"/>.</summary>
    double Loss(ReadOnlySpan<float> parameters, LabeledImages data, ReadOnlySpan<int> indices);
}
