namespace Orleans.LIFL.Client.Training;

/// <summary>What one <see cref="IClassifier.Train"/> call did.</summary>
/// <param name="ExamplesSeen">Examples processed over all epochs (the examples times the epochs).</param>
/// <param name="MeanLoss">
/// The mean cross-entropy over those examples, each measured in the forward pass of its step (before that step's
/// update). It leaves out FedProx's proximal term, so that runs with and without it compare.
/// </param>
public sealed record TrainingResult(long ExamplesSeen, double MeanLoss);
