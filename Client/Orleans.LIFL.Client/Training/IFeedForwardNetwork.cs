using Orleans.LIFL.Grains.FL;

namespace Orleans.LIFL.Client.Training;

/// <summary>
/// A classifier network as <see cref="FeedForwardClassifier"/> drives it: the logits of a batch of examples, and the
/// parameter gradient of a loss from that loss's gradient with respect to the logits.
/// </summary>
internal interface IFeedForwardNetwork
{
    ModelSpec Spec { get; }

    /// <summary>Values per example the network reads.</summary>
    int Features { get; }

    /// <summary>Logits per example the network produces.</summary>
    int Classes { get; }

    /// <summary>The scratch for batches of up to <paramref name="capacity"/> examples, for one call on one thread.</summary>
    IBatchPass CreatePass(int capacity);
}

/// <summary>A forward and backward pass over a batch, with whatever per-example state the backward pass needs.</summary>
internal interface IBatchPass
{
    /// <summary>
    /// The logits (<paramref name="count"/> rows of <see cref="IFeedForwardNetwork.Classes"/>) of the examples whose
    /// features are the <paramref name="count"/> rows of <paramref name="inputs"/>.
    /// </summary>
    void Forward(ReadOnlySpan<float> parameters, ReadOnlySpan<float> inputs, int count, Span<float> logits);

    /// <summary>
    /// Writes into <paramref name="gradient"/> the gradient, with respect to the parameters, of a loss whose gradient
    /// with respect to the logits of the preceding <see cref="Forward"/> (same parameters and inputs) is
    /// <paramref name="logitGradient"/>.
    /// </summary>
    void Backward(ReadOnlySpan<float> parameters, ReadOnlySpan<float> inputs, int count, ReadOnlySpan<float> logitGradient, Span<float> gradient);
}
