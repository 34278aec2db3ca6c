using System.Numerics;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// FedYogi: v = v − (1 − β₂)·Δ̄²·sign(v − Δ̄²). Unlike Adam's multiplicative decay, v moves towards Δ̄² by at most
/// (1 − β₂)·Δ̄² a step, so it cannot collapse after a burst of large deltas and inflate the steps (Zaheer et al. 2018).
/// </summary>
internal sealed class FedYogiOptimizer(int parameters, ServerOptimizerOptions options)
    : AdaptiveServerOptimizer(ServerOptimizers.FedYogi, parameters, options)
{
    private readonly float _oneMinusBeta2 = (float)(1 - options.Beta2);

    // sign() is 0 on a tie, leaving v unchanged; TensorPrimitives has no float-valued sign, and CopySign would move v
    // by a full step on a tie, so the rule is written with comparison masks.
    protected override void UpdateSecondMoment(Span<float> secondMoment, ReadOnlySpan<float> squaredDelta)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var rate = new Vector<float>(_oneMinusBeta2);
            for (; i <= secondMoment.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var moment = new Vector<float>(secondMoment[i..]);
                var squared = new Vector<float>(squaredDelta[i..]);
                var step = rate * squared;
                var signedStep = Vector.ConditionalSelect(
                    Vector.GreaterThan(moment, squared),
                    step,
                    Vector.ConditionalSelect(Vector.LessThan(moment, squared), -step, Vector<float>.Zero));
                (moment - signedStep).CopyTo(secondMoment[i..]);
            }
        }

        for (; i < secondMoment.Length; i++)
        {
            var moment = secondMoment[i];
            var squared = squaredDelta[i];
            var step = _oneMinusBeta2 * squared;
            secondMoment[i] = moment > squared ? moment - step : moment < squared ? moment + step : moment;
        }
    }
}
