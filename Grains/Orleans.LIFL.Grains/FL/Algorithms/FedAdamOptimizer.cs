using System.Numerics.Tensors;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>FedAdam: v = β₂·v + (1 − β₂)·Δ̄², an exponential average of Δ̄².</summary>
internal sealed class FedAdamOptimizer(int parameters, ServerOptimizerOptions options)
    : AdaptiveServerOptimizer(ServerOptimizers.FedAdam, parameters, options)
{
    private readonly float _beta2 = (float)options.Beta2;
    private readonly float _oneMinusBeta2 = (float)(1 - options.Beta2);

    protected override void UpdateSecondMoment(Span<float> secondMoment, ReadOnlySpan<float> squaredDelta)
    {
        TensorPrimitives.Multiply(secondMoment, _beta2, secondMoment);
        TensorPrimitives.MultiplyAdd(squaredDelta, _oneMinusBeta2, secondMoment, secondMoment);
    }
}
