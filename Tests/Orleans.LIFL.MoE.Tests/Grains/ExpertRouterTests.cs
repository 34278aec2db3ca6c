using Microsoft.Extensions.Time.Testing;
using Orleans.LIFL.Grains.MoE;
using Xunit;

namespace Orleans.LIFL.MoE.Tests.Grains;

/// <summary>The session's datapath: deadlines, replay to a shadow, suspicion of the failed silo, table updates.</summary>
public sealed class ExpertRouterTests
{
    private static readonly ExpertRoutingTable Table = new()
    {
        Deployment = "d",
        Version = 1,
        Layers = 1,
        Experts = 2,
        Candidates =
        [
            [new ExpertReplica("a0", "silo-a"), new ExpertReplica("b0", "silo-b")],
            [new ExpertReplica("a1", "silo-a"), new ExpertReplica("b1", "silo-b")],
        ],
    };

    private static readonly MoeDeploymentSpec Spec = new() { Config = new(), MinExpertDeadline = TimeSpan.FromMilliseconds(25), DeadlineMultiple = 8 };

    /// <summary>A primary that never answers is replayed to the shadow once its deadline passes, and the silo is avoided from then on.</summary>
    [Fact]
    public async Task A_silent_primary_is_replayed_to_its_shadow_at_the_deadline()
    {
        var time = new FakeTimeProvider();
        var experts = new Dictionary<string, FakeExpert>
        {
            ["a0"] = new(silent: true),
            ["b0"] = new(silent: false),
            ["a1"] = new(silent: false),
            ["b1"] = new(silent: false),
        };
        var failures = new List<string>();
        var router = new ExpertRouter(Table, Spec, r => experts[r.Key], time, (r, _) => failures.Add(r.Key));

        // A first answered call sets the smoothed latency (2 ms): the deadline becomes max(25 ms, 8 × 2 ms).
        var warm = router.CallAsync(0, 1, [1f]);
        time.Advance(TimeSpan.FromMilliseconds(2));
        experts["a1"].Answer();
        Assert.Equal(new[] { 2f }, await warm);
        Assert.Equal(TimeSpan.FromMilliseconds(25), router.Deadline);

        var call = router.CallAsync(0, 0, [3f]);
        time.Advance(TimeSpan.FromMilliseconds(24));
        Assert.False(call.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, experts["b0"].Replays);
        experts["b0"].Answer();
        Assert.Equal(new[] { 6f }, await call);
        Assert.Equal(["a0"], failures);
        Assert.Equal((1, 1), (router.Replays, router.Timeouts));

        // The suspected silo is skipped for the other expert too: its shadow is called first, as a first-time call.
        Assert.True(router.IsSuspected("silo-a"));
        var next = router.CallAsync(0, 1, [5f]);
        experts["b1"].Answer();
        Assert.Equal(new[] { 10f }, await next);
        Assert.Equal(1, experts["a1"].Calls);
        Assert.Equal((1, 0), (experts["b1"].Calls, experts["b1"].Replays));
    }

    /// <summary>
    /// A call carrying several tokens (a prefill) is given the one-token deadline for each before it is replayed, and its
    /// latency does not count toward the one-token calls' smoothed latency.
    /// </summary>
    [Fact]
    public async Task A_call_of_several_tokens_gets_a_deadline_for_each()
    {
        var time = new FakeTimeProvider();
        var experts = new Dictionary<string, FakeExpert> { ["a0"] = new(silent: true), ["b0"] = new(silent: false), ["a1"] = new(silent: false) };
        var router = new ExpertRouter(Table, Spec, r => experts[r.Key], time, (_, _) => { });
        var warm = router.CallAsync(0, 1, [1f]);
        time.Advance(TimeSpan.FromMilliseconds(2));
        experts["a1"].Answer();
        await warm;
        Assert.Equal(TimeSpan.FromMilliseconds(75), router.DeadlineFor(3));
        Assert.Equal(ExpertRouter.FirstCallDeadline, router.DeadlineFor(1000));

        var call = router.CallAsync(0, 0, [1f, 2f, 3f], rows: 3);
        time.Advance(TimeSpan.FromMilliseconds(74));
        Assert.Equal(0, experts["b0"].Replays);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, experts["b0"].Replays);
        time.Advance(TimeSpan.FromMilliseconds(40));
        experts["b0"].Answer();
        Assert.Equal(new[] { 2f, 4f, 6f }, await call);
        Assert.Equal(2, router.SmoothedLatencyMs);
    }

    /// <summary>A replica that misses its deadline but answers later is trusted again: late is not dead.</summary>
    [Fact]
    public async Task A_late_answer_clears_the_suspicion()
    {
        var time = new FakeTimeProvider();
        var experts = new Dictionary<string, FakeExpert> { ["a0"] = new(silent: false), ["b0"] = new(silent: false) };
        var router = new ExpertRouter(Table, Spec, r => experts[r.Key], time, (_, _) => { });
        var call = router.CallAsync(0, 0, [1f]);
        time.Advance(ExpertRouter.FirstCallDeadline);
        Assert.True(router.IsSuspected("silo-a"));
        experts["b0"].Answer();
        Assert.Equal(new[] { 2f }, await call);

        experts["a0"].Answer();
        await WaitUntilAsync(() => !router.IsSuspected("silo-a"));
        Assert.Equal(1, router.Timeouts);
    }

    /// <summary>
    /// Once the primary's silo failed, its shadow carries the load alone and may miss a deadline: its late call is waited
    /// for, not replayed to the failed silo (lost work) nor held against the shadow's silo.
    /// </summary>
    [Fact]
    public async Task A_late_shadow_is_waited_for_when_the_other_candidate_is_suspected()
    {
        var time = new FakeTimeProvider();
        var experts = new Dictionary<string, FakeExpert>
        {
            ["a0"] = new(silent: false),
            ["a1"] = new(silent: false, failure: new SiloUnavailableException("silo-a is unreachable")),
            ["b0"] = new(silent: false),
            ["b1"] = new(silent: false),
        };
        var failures = new List<string>();
        var router = new ExpertRouter(Table, Spec, r => experts[r.Key], time, (r, _) => failures.Add(r.Key));

        // Silo a fails a call: it is replayed to silo b at once, and silo a is suspected from then on.
        var first = router.CallAsync(0, 1, [1f]);
        experts["b1"].Answer();
        Assert.Equal(new[] { 2f }, await first);
        Assert.True(router.IsSuspected("silo-a"));

        // Expert 0 goes to silo b first; it answers late, long after the deadline, and nothing is replayed to silo a.
        var call = router.CallAsync(0, 0, [3f]);
        time.Advance(ExpertRouter.FirstCallDeadline);
        Assert.False(call.IsCompleted);
        Assert.Equal(0, experts["a0"].Calls + experts["a0"].Replays);
        Assert.Equal((1, 1, 1), (router.Timeouts, router.WaitedOut, router.Replays));
        Assert.False(router.IsSuspected("silo-b"));
        experts["b0"].Answer();
        Assert.Equal(new[] { 6f }, await call);
        Assert.Equal(["a1"], failures);
    }

    /// <summary>When every candidate is suspected, the one whose silo answered last is tried first.</summary>
    [Fact]
    public async Task Among_suspected_candidates_the_last_to_answer_goes_first()
    {
        var time = new FakeTimeProvider();
        var experts = new Dictionary<string, FakeExpert>
        {
            ["a0"] = new(silent: false),
            ["b0"] = new(silent: false),
            ["b1"] = new(silent: false),
        };
        var table = Table with { Candidates = [Table.Candidates[0], [new ExpertReplica("b1", "silo-b"), new ExpertReplica("a1", "silo-a")]] };
        var router = new ExpertRouter(table, Spec, r => experts[r.Key], time, (_, _) => { });
        var fromA = router.CallAsync(0, 0, [1f]);
        experts["a0"].Answer();
        await fromA;
        time.Advance(TimeSpan.FromMilliseconds(1));
        var fromB = router.CallAsync(0, 1, [1f]);
        experts["b1"].Answer();
        await fromB;

        Assert.True(router.Update(table with { Version = 2, DeadSilos = ["silo-a", "silo-b"] }));
        var call = router.CallAsync(0, 0, [2f]);
        Assert.Equal((1, 1), (experts["a0"].Calls, experts["b0"].Calls));
        experts["b0"].Answer();
        Assert.Equal(new[] { 4f }, await call);
    }

    /// <summary>When the replay fails outright, the late first call is still waited for: a spurious timeout never fails the token.</summary>
    [Fact]
    public async Task A_late_primary_still_answers_when_its_shadow_fails()
    {
        var time = new FakeTimeProvider();
        var experts = new Dictionary<string, FakeExpert>
        {
            ["a0"] = new(silent: false),
            ["b0"] = new(silent: false, failure: new SiloUnavailableException("silo-b is unreachable")),
        };
        var router = new ExpertRouter(Table, Spec, r => experts[r.Key], time, (_, _) => { });
        var call = router.CallAsync(0, 0, [3f]);
        time.Advance(ExpertRouter.FirstCallDeadline);
        Assert.False(call.IsCompleted);
        experts["a0"].Answer();
        Assert.Equal(new[] { 6f }, await call);
        Assert.Equal((1, 1), (router.Replays, router.Timeouts));
    }

    /// <summary>
    /// When every candidate the session knows has failed, it asks the deployment for its current table (the one it holds
    /// may be stale) and tries that table's replicas; with no newer table it gives up with the reason.
    /// </summary>
    [Fact]
    public async Task A_stale_table_is_refreshed_once_every_known_replica_failed()
    {
        var time = new FakeTimeProvider();
        var dead = new SiloUnavailableException("silo-a and silo-b are gone");
        var experts = new Dictionary<string, FakeExpert>
        {
            ["a0"] = new(silent: false, failure: dead),
            ["b0"] = new(silent: false, failure: dead),
            ["c0"] = new(silent: false),
        };
        var newer = Table with
        {
            Version = 3,
            Candidates = [[new ExpertReplica("c0", "silo-c")], Table.Candidates[1]],
            DeadSilos = ["silo-a", "silo-b"],
        };
        var asked = 0;
        var router = new ExpertRouter(Table, Spec, r => experts[r.Key], time, (_, _) => { }, () =>
        {
            asked++;
            return Task.FromResult<ExpertRoutingTable?>(newer);
        });
        var call = router.CallAsync(0, 0, [4f]);
        await WaitUntilAsync(() => experts["c0"].Calls == 1);
        experts["c0"].Answer();
        Assert.Equal(new[] { 8f }, await call);
        Assert.Equal((1, 1, 3L), (asked, router.Refreshes, router.Table.Version));

        // The deployment has nothing newer: the call fails, naming the expert.
        var stale = new ExpertRouter(Table, Spec, r => experts[r.Key], time, (_, _) => { }, () => Task.FromResult<ExpertRoutingTable?>(Table));
        var error = await Assert.ThrowsAsync<ExpertUnavailableException>(() => stale.CallAsync(0, 0, [4f]));
        Assert.Contains("Expert (0, 0)", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, stale.Refreshes);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var started = DateTime.UtcNow;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10), "the condition did not come true");
            await Task.Yield();
        }
    }

    /// <summary>A primary whose silo is gone (the call fails at once) is replayed without waiting for any deadline.</summary>
    [Fact]
    public async Task A_failed_call_is_replayed_at_once()
    {
        var time = new FakeTimeProvider();
        var experts = new Dictionary<string, FakeExpert>
        {
            ["a0"] = new(silent: false, failure: new SiloUnavailableException("silo-a is unreachable")),
            ["b0"] = new(silent: false),
        };
        var router = new ExpertRouter(Table, Spec, r => experts[r.Key], time, (_, _) => { });
        var call = router.CallAsync(0, 0, [4f]);
        experts["b0"].Answer();
        Assert.Equal(new[] { 8f }, await call);
        Assert.Equal((1, 0), (router.Replays, router.Timeouts));
    }

    /// <summary>In the restart baseline a failure is not replayed: it surfaces, and the session gives way to the restart.</summary>
    [Fact]
    public async Task The_restart_baseline_does_not_replay()
    {
        var time = new FakeTimeProvider();
        var experts = new Dictionary<string, FakeExpert>
        {
            ["a0"] = new(silent: false, failure: new SiloUnavailableException("gone")),
            ["b0"] = new(silent: false),
        };
        var router = new ExpertRouter(Table, Spec with { Recovery = RecoveryMode.Restart, Shadows = 0 }, r => experts[r.Key], time, (_, _) => { });
        await Assert.ThrowsAsync<ExpertUnavailableException>(() => router.CallAsync(0, 0, [1f]));
        Assert.Equal(0, experts["b0"].Calls + experts["b0"].Replays);
    }

    /// <summary>Only a newer table of the same epoch replaces the session's; its dead silos are avoided.</summary>
    [Fact]
    public void Only_newer_tables_are_taken()
    {
        var router = new ExpertRouter(Table, Spec, _ => throw new InvalidOperationException(), TimeProvider.System, (_, _) => { });
        Assert.False(router.Update(Table with { Version = 1, DeadSilos = ["silo-b"] }));
        Assert.False(router.Update(Table with { Version = 5, Epoch = 1 }));
        Assert.True(router.Update(Table with { Version = 2, DeadSilos = ["silo-b"] }));
        Assert.True(router.IsSuspected("silo-b"));
        Assert.False(router.IsSuspected("silo-a"));
    }

    /// <summary>An expert that doubles its input, answering when the test says so (or never, or failing at once).</summary>
    private sealed class FakeExpert(bool silent, Exception? failure = null) : IExpertGrain
    {
        private readonly Queue<(TaskCompletionSource<float[]> Answer, float[] Input)> _pending = new();

        public int Calls { get; private set; }

        public int Replays { get; private set; }

        public void Answer()
        {
            var (answer, input) = _pending.Dequeue();
            answer.SetResult([.. input.Select(x => 2 * x)]);
        }

        public Task<float[]> Run(float[] routed)
        {
            Calls++;
            return Respond(routed);
        }

        public Task<float[]> Replay(float[] routed)
        {
            Replays++;
            return Respond(routed);
        }

        public Task<ExpertLoaded> Warm() => throw new NotSupportedException();

        public Task<ExpertLoaded> Ping() => throw new NotSupportedException();

        public Task Unload() => throw new NotSupportedException();

        private Task<float[]> Respond(float[] routed)
        {
            if (failure is not null)
            {
                return Task.FromException<float[]>(failure);
            }

            var answer = new TaskCompletionSource<float[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!silent)
            {
                _pending.Enqueue((answer, routed));
            }

            return answer.Task;
        }
    }
}
