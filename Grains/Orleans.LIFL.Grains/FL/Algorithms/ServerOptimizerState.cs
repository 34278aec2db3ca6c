using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// What a server optimizer carries from one round to the next: how many steps it has taken and its moments, one value
/// per model parameter (null for an algorithm that keeps none: FedAvg keeps neither, FedAvgM only the first).
/// </summary>
[GenerateSerializer]
public sealed record ServerOptimizerState(
    [property: Id(0)] string Algorithm,
    [property: Id(1)] long Steps,
    [property: Id(2)] float[]? FirstMoment,
    [property: Id(3)] float[]? SecondMoment);
