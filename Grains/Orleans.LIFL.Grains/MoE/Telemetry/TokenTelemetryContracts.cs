using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// What one session incarnation produced during one wall-clock second (sent to its deployment when the second is over,
/// and when the session stops): the tokens and the gaps between consecutive generated tokens that ended in it.
/// </summary>
/// <param name="Second">The second, as whole seconds since the Unix epoch (UTC).</param>
/// <param name="TotalTokens">The request's tokens so far, restored ones included.</param>
/// <param name="GapsMs">Time between consecutive generated tokens of this incarnation, each ending in <paramref name="Second"/>.</param>
/// <param name="MaxGapEndUtc">When the longest of <paramref name="GapsMs"/> ended.</param>
/// <param name="State">"running", "done", "failed" or "aborted".</param>
[GenerateSerializer]
[Immutable]
public sealed record SessionTokenReport(
    [property: Id(0)] string Session,
    [property: Id(1)] string Silo,
    [property: Id(2)] long Second,
    [property: Id(3)] int Tokens,
    [property: Id(4)] int TotalTokens,
    [property: Id(5)] int MaxTokens,
    [property: Id(6)] float[] GapsMs,
    [property: Id(7)] DateTime MaxGapEndUtc,
    [property: Id(8)] DateTime OpenedUtc,
    [property: Id(9)] string State,
    [property: Id(10)] long Replays);

/// <summary>A request as its deployment last heard of it (across its session incarnations).</summary>
/// <param name="TokensPerSecond">From the mean time between its newest tokens.</param>
/// <param name="MaxGapMs">The longest time between two tokens, including a gap the client saw while the request moved to a new incarnation.</param>
[GenerateSerializer]
[Immutable]
public sealed record MoeSessionView(
    [property: Id(0)] string RequestId,
    [property: Id(1)] int Incarnation,
    [property: Id(2)] string Silo,
    [property: Id(3)] string State,
    [property: Id(4)] int Tokens,
    [property: Id(5)] int MaxTokens,
    [property: Id(6)] double TokensPerSecond,
    [property: Id(7)] double TbtP50Ms,
    [property: Id(8)] double TbtP99Ms,
    [property: Id(9)] double MaxGapMs,
    [property: Id(10)] long Replays,
    [property: Id(11)] DateTime OpenedUtc,
    [property: Id(12)] DateTime LastUtc);

/// <summary>One second of a deployment's decoding over all its sessions.</summary>
[GenerateSerializer]
[Immutable]
public sealed record MoeSecond(
    [property: Id(0)] long Second,
    [property: Id(1)] int Tokens,
    [property: Id(2)] double TbtP50Ms,
    [property: Id(3)] double TbtP99Ms,
    [property: Id(4)] double MaxGapMs);

/// <summary>
/// A deployment's token telemetry, kept in its activation's memory (it starts empty when the deployment moves):
/// recent requests, the last minutes second by second, and for each failure event the stall it caused.
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record MoeTelemetry(
    [property: Id(0)] MoeSessionView[] Sessions,
    [property: Id(1)] MoeSecond[] Series,
    [property: Id(2)] MoeEventStall[] Stalls);

/// <summary>The failure event at <paramref name="AtUtc"/> (of <paramref name="Kind"/>, for <paramref name="Silo"/>) and the longest gap between tokens around it; null when no token gap is known near it.</summary>
[GenerateSerializer]
[Immutable]
public sealed record MoeEventStall(
    [property: Id(0)] DateTime AtUtc,
    [property: Id(1)] string Silo,
    [property: Id(2)] string Kind,
    [property: Id(3)] double? StallMs)
{
    public bool Describes(MoeFailureEvent failure) => failure is not null && failure.AtUtc == AtUtc && failure.Silo == Silo && failure.Kind == Kind;
}
