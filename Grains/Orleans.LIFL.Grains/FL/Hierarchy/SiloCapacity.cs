using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL.Hierarchy;

/// <summary>
/// What the planner knows of one silo for a round: where it runs, the CPU it can give aggregators and how many of the
/// round's updates are expected to land on it.
/// </summary>
/// <param name="Silo">The silo's address text; aggregators are placed by it.</param>
/// <param name="Node">The machine the silo runs on. Silos of one node share memory, so hand-offs between them stay off
/// the network.</param>
/// <param name="Cores">The cores the silo may use (its share of the node when the node's cores are split among silos).</param>
/// <param name="CpuLoad">The silo process's current share of the machine, 0..1.</param>
/// <param name="ExpectedUpdates">Updates expected to arrive at this silo this round (an estimate, so fractional).</param>
[GenerateSerializer]
[Immutable]
public sealed record SiloCapacity(
    [property: Id(0)] string Silo,
    [property: Id(1)] string Node,
    [property: Id(2)] int Cores,
    [property: Id(3)] double CpuLoad,
    [property: Id(4)] double ExpectedUpdates)
{
    /// <summary>
    /// Cores not in use: Cores·(1 − CpuLoad), never negative. Zero does not bar the silo: it can always host one
    /// aggregator (the leaf that keeps its own updates local), it just gets no more than that.
    /// </summary>
    public double FreeCores => Math.Max(0, Cores * (1 - CpuLoad));
}
