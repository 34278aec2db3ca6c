using System.Globalization;
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

/// <summary>
/// The failure event at <paramref name="AtUtc"/> (of <paramref name="Kind"/>, for <paramref name="Silo"/>) and the longest
/// gap between tokens around it; null when no token gap is known near it. <paramref name="Resume"/>: the longest client
/// wait for a request's next incarnation around it, in phases (no longer than the stall; shorter when a session paused
/// longer nearby).
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record MoeEventStall(
    [property: Id(0)] DateTime AtUtc,
    [property: Id(1)] string Silo,
    [property: Id(2)] string Kind,
    [property: Id(3)] double? StallMs,
    [property: Id(4)] SessionResume? Resume = null)
{
    public bool Describes(MoeFailureEvent failure) => failure is not null && failure.AtUtc == AtUtc && failure.Silo == Silo && failure.Kind == Kind;
}

/// <summary>
/// How a request moved to its next incarnation, as its client timed it: the whole gap between the last token before and
/// the first after, in phases. <see cref="NoticedMs"/>: the last token to the client giving the old incarnation up (its
/// connection failed, or it stayed silent past the client's patience); <see cref="ReopenMs"/>: from there to the new
/// incarnation answering Open (another gateway, the directory, the activation; the restart, in baseline mode), of which
/// <see cref="SessionOpenMs"/> inside the new incarnation's Open (attaching to the deployment, reading the checkpoint);
/// <see cref="FirstTokenMs"/>: from there to its first new token. <see cref="RecomputedTokens"/>: tokens the client
/// already had that the new incarnation decoded again (those the checkpoint had not committed).
/// </summary>
[GenerateSerializer]
[Immutable]
public sealed record SessionResume(
    [property: Id(0)] string Session,
    [property: Id(1)] double GapMs,
    [property: Id(2)] double NoticedMs,
    [property: Id(3)] double ReopenMs,
    [property: Id(4)] double SessionOpenMs,
    [property: Id(5)] double FirstTokenMs,
    [property: Id(6)] int RestoredPositions,
    [property: Id(7)] int RecomputedTokens)
{
    /// <summary>What is wrong with the figures (a phase negative or not a number, or longer than the gap), or null.</summary>
    public string? Problem()
    {
        var phases = new[] { ("gap", GapMs), ("noticed", NoticedMs), ("reopen", ReopenMs), ("session open", SessionOpenMs), ("first token", FirstTokenMs) };
        foreach (var (name, ms) in phases)
        {
            if (!double.IsFinite(ms) || ms < 0)
            {
                return $"its {name} time is {ms.ToString(CultureInfo.InvariantCulture)} ms; a time is a non-negative number of milliseconds";
            }
        }

        // The phases are timed apart, a few microseconds each way: a sum over the gap by more than that is wrong.
        return NoticedMs + ReopenMs + FirstTokenMs > GapMs + 1 ? $"its phases ({NoticedMs} + {ReopenMs} + {FirstTokenMs} ms) exceed its gap ({GapMs} ms)"
            : SessionOpenMs > ReopenMs + 1 ? $"its session open ({SessionOpenMs} ms) exceeds its reopen ({ReopenMs} ms)"
            : RestoredPositions < 0 || RecomputedTokens < 0 ? $"it restored {RestoredPositions} positions and recomputed {RecomputedTokens} tokens"
            : null;
    }
}
