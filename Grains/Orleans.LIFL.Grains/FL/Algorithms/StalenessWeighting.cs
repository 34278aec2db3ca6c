namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// FedBuff's discount of stale updates (Nguyen et al. 2022, "Federated Learning with Buffered Asynchronous
/// Aggregation"). An update's staleness sᵢ is how many server steps were taken between the global model its client
/// started from and the step it joins. A buffered update weighs wᵢ = nᵢ·<see cref="Weight"/>(sᵢ), nᵢ its example count,
/// and the buffer's mean delta is Σ wᵢΔᵢ / Σ wᵢ, applied by the server optimizer as a round's mean delta is.
/// </summary>
public static class StalenessWeighting
{
    /// <summary>1 / √(1 + <paramref name="staleness"/>): 1 for a fresh update, ½ for one three steps behind.</summary>
    public static double Weight(long staleness)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(staleness);
        return 1 / Math.Sqrt(1 + (double)staleness);
    }
}
