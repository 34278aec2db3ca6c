using System.Numerics.Tensors;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// FedAdam, FedYogi and FedAdagrad (Reddi et al. 2021, Algorithm 2), which differ only in how the second moment
/// follows Δ̄²: m = β₁·m + (1 − β₁)·Δ̄; v = rule(v, Δ̄²); global += η·m / (√v + τ). Moments start at zero and, as in
/// the paper, there is no bias correction (Flower added Adam's bias-corrected η to its FedAdam in 2024,
/// flwrlabs/flower#4362; its FedYogi and FedAdagrad have none).
/// </summary>
internal abstract class AdaptiveServerOptimizer : ServerOptimizer
{
    private readonly float _learningRate;
    private readonly float _beta1;
    private readonly float _oneMinusBeta1;
    private readonly float _tau;

    // Holds Δ̄² and then the step of one block: an optimizer steps one block at a time, so one buffer serves all.
    private readonly float[] _scratch = new float[BlockLength];

    protected AdaptiveServerOptimizer(string name, int parameters, ServerOptimizerOptions options)
        : base(name, parameters, moments: 2)
    {
        _learningRate = (float)(options.ServerLearningRate ?? ServerOptimizerOptions.DefaultAdaptiveLearningRate);
        _beta1 = (float)options.Beta1;
        // 1 − β in double, then rounded once: 1 − 0.9f in float would be off by 2.4e-7 relative.
        _oneMinusBeta1 = (float)(1 - options.Beta1);
        _tau = (float)options.Tau;
    }

    protected sealed override void StepBlock(Span<float> global, ReadOnlySpan<float> meanDelta, Span<float> firstMoment, Span<float> secondMoment)
    {
        var scratch = _scratch.AsSpan(0, global.Length);

        TensorPrimitives.Multiply(firstMoment, _beta1, firstMoment);
        TensorPrimitives.MultiplyAdd(meanDelta, _oneMinusBeta1, firstMoment, firstMoment);

        TensorPrimitives.Multiply(meanDelta, meanDelta, scratch);
        UpdateSecondMoment(secondMoment, scratch);

        TensorPrimitives.Sqrt(secondMoment, scratch);
        TensorPrimitives.Add(scratch, _tau, scratch);
        TensorPrimitives.Divide(firstMoment, scratch, scratch);
        TensorPrimitives.MultiplyAdd(scratch, _learningRate, global, global);
    }

    /// <summary>v = rule(v, Δ̄²) for one block.</summary>
    protected abstract void UpdateSecondMoment(Span<float> secondMoment, ReadOnlySpan<float> squaredDelta);
}
