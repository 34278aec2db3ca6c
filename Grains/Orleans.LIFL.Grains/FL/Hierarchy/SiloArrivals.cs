using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL.Hierarchy;

/// <summary>The moving average of the updates that arrive at one silo per round (an entry of <see cref="ArrivalEstimator"/>).</summary>
[GenerateSerializer]
[Immutable]
public sealed record SiloArrivals([property: Id(0)] string Silo, [property: Id(1)] double Updates);
