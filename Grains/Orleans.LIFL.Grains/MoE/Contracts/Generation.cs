using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>One generation: a byte-level prompt continued by up to <see cref="MaxTokens"/> tokens.</summary>
[GenerateSerializer]
[Immutable]
public sealed record GenerationRequest
{
    /// <summary>Names the request across the session's incarnations (its checkpoints are kept under it).</summary>
    [Id(0)]
    public required string RequestId { get; init; }

    [Id(1)]
    public required string Deployment { get; init; }

    /// <summary>The prompt's tokens (bytes of its UTF-8 text).</summary>
    [Id(2)]
    public required int[] Prompt { get; init; }

    [Id(3)]
    public int MaxTokens { get; init; } = 64;

    /// <summary>0: greedy; otherwise sampled at this temperature from a stream seeded by <see cref="Seed"/>.</summary>
    [Id(4)]
    public float Temperature { get; init; }

    [Id(5)]
    public ulong Seed { get; init; }

    /// <summary>
    /// Whether the session checkpoints its KV cache, when its deployment does (<see cref="MoeDeploymentSpec.Checkpointing"/>).
    /// Without, a session whose silo dies resumes by computing every position again from the prompt and the tokens
    /// the client has; the tokens are the same either way.
    /// </summary>
    [Id(6)]
    public bool Checkpoint { get; init; } = true;

    /// <summary>What is wrong with the request against a model's longest sequence, or null.</summary>
    public string? Problem(int maxSequence) =>
        RequestIdProblem(RequestId) is { } id ? id
        : Prompt is null || Prompt.Length == 0 ? "the prompt is empty"
        : Prompt.FirstOrDefault(t => t is < 0 or > 255, -1) is var bad && bad != -1 ? $"prompt token {bad} is not a byte (0-255)"
        : MaxTokens < 1 ? $"MaxTokens is {MaxTokens}; it must be at least 1"
        : Prompt.Length + MaxTokens - 1 > maxSequence ? $"the prompt's {Prompt.Length} tokens and {MaxTokens} new ones exceed the model's {maxSequence}-position sequence"
        : !float.IsFinite(Temperature) || Temperature < 0 ? $"Temperature {Temperature} must be finite and not negative"
        : null;

    /// <summary>
    /// What is wrong with a request id, or null: it names the request's sessions ("{id}#{incarnation}", after the silo
    /// of a resumed one: "/{silo}/{id}#{incarnation}"), so it may hold neither '#' nor '/'.
    /// </summary>
    public static string? RequestIdProblem(string? requestId) =>
        string.IsNullOrWhiteSpace(requestId) || requestId.AsSpan().IndexOfAny('#', '/') >= 0 ? $"RequestId '{requestId}' must be non-empty and without '#' or '/'" : null;

    /// <summary>Whether two requests ask for the same generation (a retried open, another incarnation).</summary>
    public bool SameGeneration(GenerationRequest other) =>
        other is not null && RequestId == other.RequestId && Deployment == other.Deployment && Prompt.SequenceEqual(other.Prompt)
        && MaxTokens == other.MaxTokens && Temperature.Equals(other.Temperature) && Seed == other.Seed;
}

/// <summary>How a session incarnation started: from scratch or restored, and at which token.</summary>
/// <param name="RestoredPositions">Positions of the KV cache taken from the checkpoint store (0: none).</param>
/// <param name="RestoredTokens">Generated tokens recovered with them (they are not computed again).</param>
/// <param name="Epoch">The deployment's restart count when the session opened.</param>
[GenerateSerializer]
[Immutable]
public sealed record SessionOpened(
    [property: Id(0)] string Session,
    [property: Id(1)] string Silo,
    [property: Id(2)] int RestoredPositions,
    [property: Id(3)] int RestoredTokens,
    [property: Id(4)] TimeSpan RestoreTime,
    [property: Id(5)] int Epoch,
    [property: Id(6)] RecoveryMode Recovery)
{
    /// <summary>
    /// The checkpoint store a next incarnation would restore from (null: no checkpointing); later answers of the session
    /// (<see cref="TokenBatch.CheckpointStore"/>) may name another.
    /// </summary>
    [Id(7)]
    public string? CheckpointStore { get; init; }

    /// <summary>The silo of that store, where a next incarnation is opened (null: not known).</summary>
    [Id(8)]
    public string? CheckpointSilo { get; init; }
}

/// <summary>Tokens from index <see cref="From"/> on (possibly none yet), and whether generation ended.</summary>
/// <param name="Failure">Why generation stopped before its end (null while it runs or when it finished).</param>
/// <param name="Aborted">The deployment is restarting (baseline mode): open the session again once it is ready.</param>
/// <param name="Replays">Expert calls this incarnation replayed to another replica so far.</param>
[GenerateSerializer]
[Immutable]
public sealed record TokenBatch(
    [property: Id(0)] int From,
    [property: Id(1)] int[] Tokens,
    [property: Id(2)] bool Done,
    [property: Id(3)] string? Failure,
    [property: Id(4)] bool Aborted,
    [property: Id(5)] int Replays)
{
    /// <summary>
    /// The checkpoint store a next incarnation would restore from now (null: no checkpointing): the store a resumed
    /// session restored from until its own store holds as much, then its own.
    /// </summary>
    [Id(6)]
    public string? CheckpointStore { get; init; }

    /// <summary>The silo of that store (null: not known yet): the client opens a next incarnation there, next to its KV cache.</summary>
    [Id(7)]
    public string? CheckpointSilo { get; init; }
}
