using System.Numerics.Tensors;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>FedAvg with server momentum (Hsu et al. 2019): m = β·m + Δ̄; global += η·m.</summary>
internal sealed class FedAvgMOptimizer(int parameters, ServerOptimizerOptions options)
    : ServerOptimizer(ServerOptimizers.FedAvgM, parameters, moments: 1)
{
    private readonly float _learningRate = (float)(options.ServerLearningRate ?? ServerOptimizerOptions.DefaultAveragingLearningRate);
    private readonly float _momentum = (float)options.Momentum;

    protected override void StepBlock(Span<float> global, ReadOnlySpan<float> meanDelta, Span<float> firstMoment, Span<float> secondMoment)
    {
        TensorPrimitives.MultiplyAdd(firstMoment, _momentum, meanDelta, firstMoment);
        TensorPrimitives.MultiplyAdd(firstMoment, _learningRate, global, global);
    }
}
