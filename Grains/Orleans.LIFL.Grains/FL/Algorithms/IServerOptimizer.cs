namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// Applies a round's aggregate, the example-weighted mean delta Δ̄ = Σ nᵢΔᵢ / Σ nᵢ, to the global model: the server
/// side of Reddi et al. 2021, "Adaptive Federated Optimization" (Algorithm 2). An optimizer keeps state between
/// rounds (its moments), so one instance serves one job and is not safe for concurrent use.
/// </summary>
public interface IServerOptimizer
{
    /// <summary>The algorithm, as <see cref="ServerOptimizers.Create"/> names it and <see cref="ServerOptimizerState.Algorithm"/> records it.</summary>
    string Name { get; }

    /// <summary>Moves <paramref name="global"/> in place by one server step along <paramref name="meanDelta"/>.</summary>
    void Step(Span<float> global, ReadOnlySpan<float> meanDelta);

    /// <summary>
    /// The same step from a round's weighted sum, given in parts: <paramref name="next"/> = <paramref name="global"/>
    /// moved along Δ̄ = (Σ <paramref name="sums"/>) × <paramref name="scale"/>, in one pass over all the vectors (Δ̄ is
    /// formed a cache block at a time, never in memory: the parts added in order, then scaled, exactly as adding them
    /// into the first and scaling it would); <paramref name="global"/> and the sums are not changed, except that
    /// <paramref name="next"/> may be the first sum's memory: each stretch of it is read before it is written.
    /// </summary>
    void Step(ReadOnlySpan<float> global, IReadOnlyList<ReadOnlyMemory<float>> sums, float scale, Span<float> next);

    /// <summary>A copy of the state, to persist it (for example with the global model of a checkpoint).</summary>
    ServerOptimizerState ExportState();

    /// <summary>Replaces the state with a copy of <paramref name="state"/>, which must be this algorithm's and this model's.</summary>
    void ImportState(ServerOptimizerState state);
}
