using System.Numerics.Tensors;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// FedAvg on the server (McMahan et al. 2017): global += η·Δ̄. With η = 1 the new global model is the example-weighted
/// average of the client models. FedProx and FedBuff change the clients and the buffering, not this step.
/// </summary>
internal sealed class FedAvgOptimizer(int parameters, ServerOptimizerOptions options)
    : ServerOptimizer(ServerOptimizers.FedAvg, parameters, moments: 0)
{
    private readonly float _learningRate = (float)(options.ServerLearningRate ?? ServerOptimizerOptions.DefaultAveragingLearningRate);

    protected override void StepBlock(Span<float> global, ReadOnlySpan<float> meanDelta, Span<float> firstMoment, Span<float> secondMoment) =>
        TensorPrimitives.MultiplyAdd(meanDelta, _learningRate, global, global);
}
