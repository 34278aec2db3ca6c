using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL;

/// <summary>What accompanies an update's bytes (a shared buffer of float32 deltas: trained weights − the round's global weights).</summary>
[GenerateSerializer]
[Immutable]
public sealed record UpdateSubmission
{
    /// <summary>Chosen by the trainer, unique per update; sending the same update again with it is harmless.</summary>
    [Id(0)]
    public required string UpdateId { get; init; }

    [Id(1)]
    public int Round { get; init; }

    /// <summary>The global model version the trainer started from.</summary>
    [Id(2)]
    public long BaseVersion { get; init; }

    /// <summary>How many examples the update was trained on (its weight in the average).</summary>
    [Id(3)]
    public long Examples { get; init; }

    /// <summary>The element type of the buffer: only "float32" is accepted.</summary>
    [Id(4)]
    public string DType { get; init; } = "float32";
}

/// <summary>An accepted update: it is in the aggregate of <see cref="Round"/>'s <see cref="Epoch"/>.</summary>
[GenerateSerializer]
[Immutable]
public sealed record UpdateReceipt(
    [property: Id(0)] string UpdateId,
    [property: Id(1)] int Round,
    [property: Id(2)] int Epoch,
    [property: Id(3)] bool AlreadyAccepted,
    [property: Id(4)] long Staleness);

public enum RejectionReason
{
    WrongShape,
    WrongDType,
    NonFinite,
    NormTooLarge,
    UnknownJob,
    UnknownClient,
    NotSelected,
    RoundClosed,
    DuplicateUpdateId,
    TooStale,
    BadExamples,
}

/// <summary>
/// An update was refused, and why; nothing of it reached the aggregate. The message starts with the reason
/// ("RoundClosed: ...") so that the reason survives the trip to a client in another process.
/// </summary>
public sealed class UpdateRejectedException : Exception
{
    public UpdateRejectedException(RejectionReason reason, string detail)
        : base($"{reason}: {detail}")
    {
        Reason = reason;
    }

    /// <summary>Rebuilds the exception from its message (how it arrives from another process).</summary>
    public UpdateRejectedException(string message)
        : base(message)
    {
        var colon = message.IndexOf(':', StringComparison.Ordinal);
        Reason = colon > 0 && Enum.TryParse<RejectionReason>(message[..colon], out var reason) ? reason : RejectionReason.BadExamples;
    }

    public RejectionReason Reason { get; }
}

public enum TrainerTaskKind
{
    /// <summary>Not selected now: wait for the next change.</summary>
    Wait,

    /// <summary>Train on <see cref="TrainerTask.ModelVersion"/> and submit an update for the round.</summary>
    Train,

    /// <summary>The update this client had accepted in an earlier epoch of the round was lost with its aggregator: send it again.</summary>
    Resend,

    /// <summary>The job is complete.</summary>
    Done,
}

/// <summary>What a trainer should do next, as its client session sees the job.</summary>
[GenerateSerializer]
[Immutable]
public sealed record TrainerTask
{
    [Id(0)]
    public TrainerTaskKind Kind { get; init; }

    [Id(1)]
    public int Round { get; init; }

    [Id(2)]
    public int Epoch { get; init; }

    [Id(3)]
    public long ModelVersion { get; init; }

    /// <summary>The job's revision this task reflects: pass it to the next NextTask to wait for a change.</summary>
    [Id(4)]
    public long Revision { get; init; }

    [Id(5)]
    public TrainingSettings Training { get; init; } = new();

    /// <summary>FedProx's μ (0 for the other algorithms).</summary>
    [Id(6)]
    public double ProximalMu { get; init; }

    /// <summary>The update id the trainer must resend (Resend only).</summary>
    [Id(7)]
    public string? UpdateId { get; init; }
}

/// <summary>What a client learns when it joins a job.</summary>
[GenerateSerializer]
[Immutable]
public sealed record JoinedJob(
    [property: Id(0)] string JobId,
    [property: Id(1)] string ClientId,
    [property: Id(2)] ModelSpec Model,
    [property: Id(3)] string Algorithm,
    [property: Id(4)] TrainingSettings Training);
