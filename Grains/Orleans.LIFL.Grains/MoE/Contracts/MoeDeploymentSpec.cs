using Orleans.LIFL.Grains.MoE.Model;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>How a deployment recovers from a failed silo.</summary>
public enum RecoveryMode
{
    /// <summary>Tarragon: expert calls are replayed to shadows at once, sessions resume from their KV checkpoints.</summary>
    Reroute,

    /// <summary>
    /// The coarse-grained baseline: once the cluster declares the silo dead, every session and expert is deactivated,
    /// the weights are loaded afresh and every request is prefilled again.
    /// </summary>
    Restart,
}

/// <summary>
/// A Mixture-of-Experts model served by the cluster: its weights (a safetensors file every silo can read, or seeded
/// random weights of <see cref="Config"/>), how many shadow replicas each expert has, on which silos experts run, and
/// how failures are handled.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record MoeDeploymentSpec
{
    /// <summary>The decoder's shape when the weights are seeded (ignored when <see cref="WeightsPath"/> is set: the file carries it).</summary>
    [Id(0)]
    public MoeConfig? Config { get; init; }

    /// <summary>A safetensors file written by <see cref="MoeWeights.Save"/> (or of the same layout), readable on every silo.</summary>
    [Id(1)]
    public string? WeightsPath { get; init; }

    /// <summary>Seeds the random weights when no file is given.</summary>
    [Id(2)]
    public ulong Seed { get; init; }

    /// <summary>Pre-loaded idle replicas per expert, each on another silo than the primary and the other shadows.</summary>
    [Id(3)]
    public int Shadows { get; init; } = 1;

    /// <summary>The silos experts may run on (their addresses); empty: every active silo.</summary>
    [Id(4)]
    public string[] ExpertSilos { get; init; } = [];

    [Id(5)]
    public RecoveryMode Recovery { get; init; } = RecoveryMode.Reroute;

    /// <summary>Whether sessions stream their KV segments to a checkpoint store (so that they can resume elsewhere).</summary>
    [Id(6)]
    public bool Checkpointing { get; init; } = true;

    /// <summary>The least time an expert call is given before it is replayed elsewhere.</summary>
    [Id(7)]
    public TimeSpan MinExpertDeadline { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>An expert call is replayed after this multiple of the session's smoothed expert latency (at least <see cref="MinExpertDeadline"/>).</summary>
    [Id(8)]
    public double DeadlineMultiple { get; init; } = 4;

    /// <summary>
    /// A session sends its new KV segments to the store once the oldest unsent one is about this old (drawn between
    /// half and one and a half times it for each send, so that sessions started together do not send together) unless
    /// <see cref="CheckpointBatch"/> made it go sooner: the bound for a slowly decoding session.
    /// </summary>
    [Id(9)]
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Positions that make a checkpoint batch go at once, whatever its age, and the most one call carries; a resumed
    /// session recomputes about this many (in one batched step). A session decoding fast sends by count, every this
    /// many tokens, at its own positions rather than at the same moment as the sessions that started with it.
    /// </summary>
    [Id(10)]
    public int CheckpointBatch { get; init; } = 16;

    /// <summary>What is wrong with the spec, naming the setting, or null.</summary>
    public string? Problem() =>
        WeightsPath is null && Config is null ? "neither WeightsPath nor Config is set: the model's weights are unknown"
        : WeightsPath is null && Config!.Problem() is { } config ? $"Config: {config}"
        : WeightsPath is not null && !File.Exists(WeightsPath) ? $"WeightsPath {WeightsPath} does not exist"
        : Shadows is < 0 or > 8 ? $"Shadows is {Shadows}; it must be between 0 and 8"
        : Recovery == RecoveryMode.Restart && Shadows > 0 ? "the Restart baseline has no shadows: set Shadows to 0"
        : !(MinExpertDeadline > TimeSpan.Zero) ? $"MinExpertDeadline is {MinExpertDeadline}; it must be positive"
        : !(DeadlineMultiple >= 1) ? $"DeadlineMultiple is {DeadlineMultiple}; it must be at least 1"
        : CheckpointInterval < TimeSpan.Zero ? $"CheckpointInterval is {CheckpointInterval}; it must not be negative"
        : CheckpointBatch is < 1 or > 1024 ? $"CheckpointBatch is {CheckpointBatch}; it must be between 1 and 1024"
        : null;

    /// <summary>Where the weights come from, for caches and logs.</summary>
    public string Source => WeightsPath is { } path ? $"file:{Path.GetFullPath(path)}" : $"seed:{Seed}:{System.Text.Json.JsonSerializer.Serialize(Config)}";
}
