using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>Why an update was refused, in the order <see cref="UpdateValidation.Check"/> tests for them.</summary>
public enum UpdateProblemKind
{
    /// <summary>The update does not have one value per model parameter.</summary>
    WrongShape,

    /// <summary>A value is NaN or infinite.</summary>
    NonFinite,

    /// <summary>The update's L2 norm exceeds the job's bound.</summary>
    NormTooLarge,
}

/// <summary>Why an update was refused; <see cref="Message"/> names the detail, for the trainer and the logs.</summary>
[GenerateSerializer]
[Immutable]
public sealed record UpdateProblem([property: Id(0)] UpdateProblemKind Kind, [property: Id(1)] string Message);
