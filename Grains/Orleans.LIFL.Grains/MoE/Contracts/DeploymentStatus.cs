using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.MoE;

public enum DeploymentPhase
{
    NotDeployed,
    Deploying,
    Ready,

    /// <summary>Baseline mode: everything is being reloaded after a failure.</summary>
    Restarting,

    /// <summary>Being taken out of service (<see cref="IMoeDeploymentGrain.Undeploy"/>).</summary>
    Undeploying,

    /// <summary>
    /// A Deploy stopped half way (an expert replica could not load, the dashboard's index could not be told): the
    /// status's Problem says why; it serves nothing. Deploying the same spec again finishes it; undeploying clears it.
    /// </summary>
    Failed,
}

/// <summary>What a session needs from its deployment: the spec and the current routing table.</summary>
[GenerateSerializer]
[Immutable]
public sealed record SessionAttachment([property: Id(0)] MoeDeploymentSpec Spec, [property: Id(1)] ExpertRoutingTable Routes);

/// <summary>A failure the deployment handled: which silo, what it did about it and how long that took.</summary>
/// <param name="Kind">"expert-silo" (experts were promoted or reloaded), "session-silo", or "false-alarm" (the suspected silo answered).</param>
/// <param name="RecoveryTime">From the first report (or the membership's verdict) to the routing table (or, in baseline mode, the restart) being ready.</param>
[GenerateSerializer]
[Immutable]
public sealed record MoeFailureEvent(
    [property: Id(0)] DateTime AtUtc,
    [property: Id(1)] string Silo,
    [property: Id(2)] string Kind,
    [property: Id(3)] string Detail,
    [property: Id(4)] int PromotedExperts,
    [property: Id(5)] int NewShadows,
    [property: Id(6)] TimeSpan RecoveryTime,
    [property: Id(7)] int Epoch);

[GenerateSerializer]
[Immutable]
public sealed record DeploymentStatus(
    [property: Id(0)] string Deployment,
    [property: Id(1)] DeploymentPhase Phase,
    [property: Id(2)] int Epoch,
    [property: Id(3)] ExpertRoutingTable? Routes,
    [property: Id(4)] int Sessions,
    [property: Id(5)] MoeFailureEvent[] Events,
    [property: Id(6)] TimeSpan LoadTime,
    [property: Id(7)] string? Problem = null)
{
    /// <summary>The session failovers played through when it was deployed, one per silo (none: not rehearsed, as in the baseline).</summary>
    [Id(8)]
    public FailoverRehearsal[] Rehearsals { get; init; } = [];
}

/// <summary>
/// A session failover played through on <paramref name="Silo"/> when the deployment was made: its session stopped half
/// way and the next incarnation resumed on <paramref name="ResumedOn"/>, next to the checkpoint, so that a real failure's
/// code paths had run there before. <paramref name="Problem"/> says why it did not finish (null: it did).
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record FailoverRehearsal(
    [property: Id(0)] string Silo,
    [property: Id(1)] string? ResumedOn,
    [property: Id(2)] TimeSpan Took,
    [property: Id(3)] string? Problem);
