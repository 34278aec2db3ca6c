namespace Orleans.LIFL.Grains.FL.Hierarchy;

/// <summary>Where an aggregator sits in a round's hierarchy.</summary>
public enum AggregatorRole
{
    /// <summary>Takes client updates and hands one partial aggregate up.</summary>
    Leaf,

    /// <summary>Combines the partial aggregates of its children (leaves or lower middles).</summary>
    Middle,

    /// <summary>Combines everything into the round's result; in a flat plan it also takes the updates itself.</summary>
    Top,
}
