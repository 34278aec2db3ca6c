using System.Numerics.Tensors;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// FedAdagrad: v = v + Δ̄², so steps shrink as Δ̄² accumulates. The first moment uses β₁ as in the paper; Flower's
/// FedAdagrad fixes β₁ = 0 (m = Δ̄), which <see cref="ServerOptimizerOptions.Beta1"/> = 0 reproduces.
/// </summary>
internal sealed class FedAdagradOptimizer(int parameters, ServerOptimizerOptions options)
    : AdaptiveServerOptimizer(ServerOptimizers.FedAdagrad, parameters, options)
{
    protected override void UpdateSecondMoment(Span<float> secondMoment, ReadOnlySpan<float> squaredDelta) =>
        TensorPrimitives.Add(secondMoment, squaredDelta, secondMoment);
}
