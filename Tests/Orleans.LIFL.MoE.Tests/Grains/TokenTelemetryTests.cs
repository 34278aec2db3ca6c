using Microsoft.Extensions.Time.Testing;
using Orleans.LIFL.Grains.MoE;
using Xunit;

namespace Orleans.LIFL.MoE.Tests.Grains;

/// <summary>The token telemetry: a session's per-second reports, and the deployment's requests, series and failure stalls.</summary>
public sealed class TokenTelemetryTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 2, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public void A_meter_reports_each_second_once_it_is_over_with_the_gaps_ending_in_it()
    {
        var time = new FakeTimeProvider(Start);
        var meter = new TokenMeter("r#0", "silo-a", 10, time);
        Assert.Null(meter.Token(1, 0));
        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Null(meter.Token(2, 0));
        time.Advance(TimeSpan.FromMilliseconds(150));
        Assert.Null(meter.Token(3, 0));
        time.Advance(TimeSpan.FromMilliseconds(800));

        var first = meter.Token(4, 1);
        Assert.NotNull(first);
        Assert.Equal(Start.ToUnixTimeSeconds(), first.Second);
        Assert.Equal(3, first.Tokens);
        Assert.Equal(3, first.TotalTokens);
        Assert.Equal([100f, 150f], first.GapsMs);
        Assert.Equal((Start + TimeSpan.FromMilliseconds(250)).UtcDateTime, first.MaxGapEndUtc);
        Assert.Equal("running", first.State);

        var last = meter.Final(4, "done", 1);
        Assert.Equal(Start.ToUnixTimeSeconds() + 1, last.Second);
        Assert.Equal(1, last.Tokens);
        Assert.Equal([800f], last.GapsMs);
        Assert.Equal(("done", 4, 10, 1L), (last.State, last.TotalTokens, last.MaxTokens, last.Replays));
    }

    [Fact]
    public void The_deployment_adds_sessions_up_per_second_and_keeps_the_newest_incarnation()
    {
        var time = new FakeTimeProvider(Start);
        var telemetry = new TokenTelemetry(time);
        var second = Start.ToUnixTimeSeconds();
        telemetry.Record(Report("a#0", second, 5, [10, 10, 10, 10], total: 5));
        telemetry.Record(Report("b#0", second, 3, [20, 30], total: 3));
        telemetry.Record(Report("a#0", second + 1, 6, [10, 10, 12, 10, 10, 10], total: 11));
        telemetry.Record(Report("a#1", second + 2, 2, [11], total: 13, silo: "silo-b"));
        telemetry.Record(Report("a#0", second + 2, 1, [], total: 12, state: "aborted")); // late, from the old incarnation

        var snapshot = telemetry.Snapshot([]);
        Assert.Equal([8, 6, 2], snapshot.Series.Select(s => s.Tokens));
        Assert.Equal([second, second + 1, second + 2], snapshot.Series.Select(s => s.Second));
        Assert.Equal(30, snapshot.Series[0].MaxGapMs);
        Assert.Equal(10, snapshot.Series[0].TbtP50Ms);

        var a = snapshot.Sessions.Single(s => s.RequestId == "a");
        Assert.Equal((1, "silo-b", "running", 13), (a.Incarnation, a.Silo, a.State, a.Tokens));
        Assert.Equal(1000 / (113 / 11.0), a.TokensPerSecond, 1); // from the mean of its 11 gaps (113 ms in all)
        Assert.Equal(10, a.TbtP50Ms);
        Assert.Equal(12, a.MaxGapMs);
        Assert.Equal(3, snapshot.Sessions.Single(s => s.RequestId == "b").Tokens);
    }

    [Fact]
    public void A_failure_event_gets_the_longest_gap_around_it_including_what_a_client_waited()
    {
        var time = new FakeTimeProvider(Start);
        var telemetry = new TokenTelemetry(time);
        var second = Start.ToUnixTimeSeconds();
        telemetry.Record(Report("a#0", second, 4, [10, 70, 10], total: 4, maxGapEnd: Start.AddMilliseconds(300)));
        time.Advance(TimeSpan.FromSeconds(10));
        var resume = new SessionResume("b#1", 140, 30, 90, 12, 20, 57, 2);
        telemetry.RecordResume(resume);
        var expertFailure = new MoeFailureEvent(Start.AddMilliseconds(320).UtcDateTime, "silo-x", "expert-silo", "", 8, 8, TimeSpan.FromMilliseconds(20), 0);
        var sessionFailure = new MoeFailureEvent(time.GetUtcNow().UtcDateTime.AddMilliseconds(-100), "silo-y", "session-silo", "", 0, 0, TimeSpan.Zero, 0);
        var quiet = new MoeFailureEvent(Start.AddMinutes(5).UtcDateTime, "silo-z", "false-alarm", "", 0, 0, TimeSpan.Zero, 0);

        var stalls = telemetry.Snapshot([expertFailure, sessionFailure, quiet]).Stalls;
        Assert.Equal([70.0, 140.0, null], stalls.Select(s => s.StallMs));
        Assert.Equal([null, resume, null], stalls.Select(s => s.Resume)); // only a client's wait has phases
        Assert.True(stalls[1].Describes(sessionFailure));
        Assert.False(stalls[1].Describes(expertFailure));
    }

    /// <summary>A session that paused longer than a client's move near a failure sets the stall; the move keeps its phases.</summary>
    [Fact]
    public void A_client_wait_shorter_than_a_nearby_pause_still_describes_the_failure()
    {
        var time = new FakeTimeProvider(Start);
        var telemetry = new TokenTelemetry(time);
        var resume = new SessionResume("b#1", 60, 20, 25, 5, 15, 40, 3);
        telemetry.RecordResume(resume);
        var second = Start.ToUnixTimeSeconds();
        telemetry.Record(Report("a#0", second, 3, [10, 180], total: 3, maxGapEnd: Start.AddMilliseconds(-300)));
        var failure = new MoeFailureEvent(Start.AddMilliseconds(-80).UtcDateTime, "silo-y", "session-silo", "", 0, 0, TimeSpan.Zero, 0);
        var elsewhere = new MoeFailureEvent(Start.AddMinutes(-1).UtcDateTime, "silo-z", "expert-silo", "", 0, 0, TimeSpan.Zero, 0);

        var stalls = telemetry.Snapshot([failure, elsewhere]).Stalls;
        Assert.Equal([180.0, null], stalls.Select(s => s.StallMs));
        Assert.Equal([resume, null], stalls.Select(s => s.Resume));
    }

    [Fact]
    public void Malformed_reports_are_refused_with_the_reason()
    {
        var telemetry = new TokenTelemetry(new FakeTimeProvider(Start));
        Assert.Contains("not a session key", Assert.Throws<ArgumentException>(() => telemetry.Record(Report("no-incarnation", 0, 1, [], total: 1))).Message, StringComparison.Ordinal);
        Assert.Contains("gap time is NaN ms", Assert.Throws<ArgumentException>(() => telemetry.RecordResume(new SessionResume("a#1", double.NaN, 0, 0, 0, 0, 0, 0))).Message, StringComparison.Ordinal);
        Assert.Contains("first token time is Infinity ms", Assert.Throws<ArgumentException>(() => telemetry.RecordResume(new SessionResume("a#1", 5, 0, 0, 0, double.PositiveInfinity, 0, 0))).Message, StringComparison.Ordinal);
        Assert.Contains("exceed its gap", Assert.Throws<ArgumentException>(() => telemetry.RecordResume(new SessionResume("a#1", 50, 30, 30, 10, 10, 0, 0))).Message, StringComparison.Ordinal);
        Assert.Contains("session open (40 ms) exceeds its reopen (20 ms)", Assert.Throws<ArgumentException>(() => telemetry.RecordResume(new SessionResume("a#1", 50, 20, 20, 40, 10, 0, 0))).Message, StringComparison.Ordinal);
        Assert.Contains("gap 1 is NaN ms", Assert.Throws<ArgumentException>(() => telemetry.Record(Report("a#0", 0, 3, [1f, float.NaN], total: 3))).Message, StringComparison.Ordinal);
        Assert.Contains("2 tokens, 3 gaps", Assert.Throws<ArgumentException>(() => telemetry.Record(Report("a#0", 0, 2, [1f, 1f, 1f], total: 2))).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => telemetry.Record(Report("a#0", 0, 1, null!, total: 1)));
        Assert.Empty(telemetry.Snapshot([]).Sessions);
    }

    private static SessionTokenReport Report(
        string session, long second, int tokens, float[] gaps, int total, string silo = "silo-a", string state = "running", DateTimeOffset? maxGapEnd = null) =>
        new(session, silo, second, tokens, total, 100, gaps, (maxGapEnd ?? DateTimeOffset.FromUnixTimeSeconds(second).AddMilliseconds(500)).UtcDateTime, Start.UtcDateTime, state, 0);
}
