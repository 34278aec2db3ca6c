using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Client.MoE;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Grains.MoE;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.TestingHost;
using Xunit;

namespace Orleans.LIFL.Dashboard.Tests;

/// <summary>The dashboard's JSON endpoints and event stream, served by the silos of an in-process cluster.</summary>
public sealed class DashboardApiTests
{
    private const string Token = "dashboard-token-0123456789";

    /// <summary>/api/cluster lists every silo with its status and figures; a killed silo shows as dead.</summary>
    [Fact]
    public async Task The_cluster_view_lists_the_silos_and_shows_a_killed_one_dead()
    {
        await using var cluster = await StartAsync(silos: 2);
        using var http = new HttpClient { BaseAddress = Address(cluster.Silos[0]) };
        var view = await GetJsonAsync(http, "/api/cluster");
        var silos = view.GetProperty("silos").EnumerateArray().ToList();
        Assert.Equal(cluster.Silos.Select(s => s.Address.ToString()).Order(), silos.Select(s => s.GetProperty("address").GetString()!).Order());
        Assert.All(silos, s => Assert.Equal("active", s.GetProperty("status").GetString()));
        var self = silos.Single(s => s.GetProperty("address").GetString() == cluster.Silos[0].Address.ToString());
        Assert.True(self.GetProperty("memory_mb").GetDouble() > 0);
        Assert.True(self.GetProperty("activations").GetInt32() >= 0);
        Assert.Equal(JsonValueKind.Number, self.GetProperty("cpu").ValueKind);

        // Calls show per grain method over the cluster, and as a rate on every silo from the second read on.
        var index = cluster.Client.GetGrain<Grains.Index.IWorkloadIndexGrain>("dashboard-test");
        for (var i = 0; i < 3; i++)
        {
            await index.List();
        }

        view = await GetJsonAsync(http, "/api/cluster");
        var list = view.GetProperty("grain_methods").EnumerateArray().Single(m => m.GetProperty("method").GetString() == "IWorkloadIndexGrain.List");
        Assert.Equal(3, list.GetProperty("calls").GetInt64());
        Assert.Equal(0, list.GetProperty("errors").GetInt64());
        Assert.True(list.GetProperty("p99_ms").GetDouble() > 0);
        Assert.All(view.GetProperty("silos").EnumerateArray(), s => Assert.Equal(JsonValueKind.Number, s.GetProperty("calls_per_second").ValueKind));
        Assert.Contains(view.GetProperty("silos").EnumerateArray(), s => s.GetProperty("activations_by_type").TryGetProperty("workloadindex", out _));

        var victim = cluster.Silos[1];
        await cluster.KillSiloAsync(victim);
        var started = DateTime.UtcNow;
        string? status;
        do
        {
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20), "the killed silo never showed as dead");
            view = await GetJsonAsync(http, "/api/cluster");
            status = view.GetProperty("silos").EnumerateArray().Single(s => s.GetProperty("address").GetString() == victim.Address.ToString()).GetProperty("status").GetString();
        }
        while (status != "dead" && await Delay());

        Assert.Equal("dead", status);
        var died = view.GetProperty("membership_events").EnumerateArray().Last(e => e.GetProperty("silo").GetString() == victim.Address.ToString());
        Assert.Equal(("active", "dead"), (died.GetProperty("from").GetString(), died.GetProperty("to").GetString()));
    }

    /// <summary>/api/dataplane reports the node's pool and whether eBPF redirection is in effect.</summary>
    [Fact]
    public async Task The_dataplane_view_reports_the_pool()
    {
        await using var cluster = await StartAsync(silos: 1);
        using var http = new HttpClient { BaseAddress = Address(cluster.Silos[0]) };
        var dataplane = await GetJsonAsync(http, "/api/dataplane");
        var expected = cluster.Silos[0].Services.GetRequiredService<INodeDataplane>();
        Assert.Equal(expected.PoolName, dataplane.GetProperty("pool").GetString());
        Assert.Equal(expected.Pool is not null, dataplane.GetProperty("pool_attached").GetBoolean());
        Assert.Equal(expected.EbpfActive, dataplane.GetProperty("ebpf_active").GetBoolean());
    }

    /// <summary>The event stream sends a cluster and a dataplane snapshot as server-sent events.</summary>
    [Fact]
    public async Task The_event_stream_sends_snapshots()
    {
        await using var cluster = await StartAsync(silos: 1);
        using var http = new HttpClient { BaseAddress = Address(cluster.Silos[0]) };
        using var response = await http.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
        var events = new Dictionary<string, JsonElement>();
        string? name = null;
        while (events.Count < 2 && await reader.ReadLineAsync(TestContext.Current.CancellationToken) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line["event: ".Length..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && name is not null)
            {
                events[name] = JsonDocument.Parse(line["data: ".Length..]).RootElement.Clone();
            }
        }

        Assert.Equal(cluster.Silos[0].Address.ToString(), events["cluster"].GetProperty("silos")[0].GetProperty("address").GetString());
        Assert.True(events["dataplane"].TryGetProperty("bytes_handed_off", out _));
    }

    /// <summary>
    /// Open pages share the server's one sample per refresh period: five event streams do not make the dashboard ask the
    /// silos for their reports five times as often.
    /// </summary>
    [Fact]
    public async Task Event_streams_share_one_cluster_sample_per_period()
    {
        var period = TimeSpan.FromMilliseconds(100);
        await using var cluster = await DashboardClusters.StartAsync(2, DashboardClusters.NewPoolName(), everySilo: false, o => o.RefreshPeriod = period);
        using var http = new HttpClient { BaseAddress = Address(cluster.Silos[0]) };
        async Task<long> ReportsAsync() => (await GetJsonAsync(http, "/api/cluster")).GetProperty("grain_methods").EnumerateArray()
            .Where(m => m.GetProperty("method").GetString() == "ISiloMonitorGrain.Report").Sum(m => m.GetProperty("calls").GetInt64());

        // The window counted spans both reads: the sampler's ticks during them are counted too.
        var started = DateTime.UtcNow;
        var before = await ReportsAsync();
        var streams = await Task.WhenAll(Enumerable.Range(0, 5).Select(async _ =>
        {
            using var response = await http.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
            var clusterEvents = 0;
            while (clusterEvents < 10 && await reader.ReadLineAsync(TestContext.Current.CancellationToken) is { } line)
            {
                clusterEvents += line == "event: cluster" ? 1 : 0;
            }

            return clusterEvents;
        }));
        var during = await ReportsAsync() - before;
        var elapsed = DateTime.UtcNow - started;

        Assert.All(streams, count => Assert.Equal(10, count));
        // One sample per period asks both silos (a late tick and the one at each end of the window may add two); the two
        // /api/cluster reads ask them once more each. Five unshared streams would ask for five samples per period.
        var samplesAtMost = elapsed / period + 4;
        Assert.True(during <= 2 * samplesAtMost, $"{during} silo reports in {elapsed.TotalMilliseconds:F0} ms: the five streams did not share the sample (at most {2 * samplesAtMost:F0})");
    }

    /// <summary>With an access token configured, requests without it (or with a wrong one) are refused; with it they are served.</summary>
    [Fact]
    public async Task Requests_without_the_access_token_are_refused()
    {
        await using var cluster = await StartAsync(silos: 1, o => o.AccessToken = Token);
        using var http = new HttpClient { BaseAddress = Address(cluster.Silos[0]) };
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/cluster", TestContext.Current.CancellationToken)).StatusCode);
        using (var wrong = new HttpRequestMessage(HttpMethod.Get, "/api/cluster"))
        {
            wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token + "x");
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong, TestContext.Current.CancellationToken)).StatusCode);
        }

        using (var right = new HttpRequestMessage(HttpMethod.Get, "/api/cluster"))
        {
            right.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(right, TestContext.Current.CancellationToken)).StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"/api/dataplane?access_token={Token}", TestContext.Current.CancellationToken)).StatusCode);
    }

    /// <summary>/api/fl/jobs lists a created job with its phase, round and algorithm.</summary>
    [Fact]
    public async Task The_FL_view_lists_the_jobs()
    {
        var pool = "d" + Guid.NewGuid().ToString("N")[..12];
        await using var cluster = await StartAsync(silos: 1, pool: pool);
        using var attachment = Orleans.LIFL.Dataplane.SharedBufferPool.Acquire(pool);
        var definition = new FlJobDefinition
        {
            Model = new ModelSpec([new TensorSpec("w", [4, 3])]),
            Algorithm = "fedadam",
            Rounds = 3,
            ClientsPerRound = 2,
            GoalUpdates = 2,
        };
        using (var initial = attachment.Rent(12 * sizeof(float)))
        {
            initial.AsSpan<float>().Fill(0.5f);
            await cluster.Client.GetGrain<IFlJobGrain>("dash-job").Create(definition, initial);
        }

        using var http = new HttpClient { BaseAddress = Address(cluster.Silos[0]) };
        var job = (await GetJsonAsync(http, "/api/fl/jobs")).GetProperty("jobs").EnumerateArray().Single();
        Assert.Equal("dash-job", job.GetProperty("job_id").GetString());
        Assert.Equal("fedadam", job.GetProperty("algorithm").GetString());
        Assert.Equal(1, job.GetProperty("round").GetInt32());
        Assert.Equal(3, job.GetProperty("rounds").GetInt32());
        Assert.Equal("collecting", job.GetProperty("phase").GetString());
    }

    /// <summary>/api/moe shows where a deployment's experts and shadows run, and a killed expert silo as dead with its failure event.</summary>
    [Fact]
    public async Task The_MoE_view_shows_experts_per_silo_and_a_failure()
    {
        await using var cluster = await StartAsync(silos: 3);
        var moe = new MoeClient(cluster.Client);
        await moe.DeployAsync("dash-moe", new MoeDeploymentSpec { Config = DashboardClusters.SmallMoe, Seed = 3, Shadows = 1 });
        using var http = new HttpClient { BaseAddress = Address(cluster.Silos[0]) };
        var deployment = (await GetJsonAsync(http, "/api/moe")).GetProperty("deployments").EnumerateArray().Single();
        Assert.Equal("ready", deployment.GetProperty("phase").GetString());
        var silos = deployment.GetProperty("expert_silos").EnumerateArray().ToList();
        Assert.Equal(8, silos.Sum(s => s.GetProperty("primaries").GetInt32()));
        Assert.Equal(8, silos.Sum(s => s.GetProperty("shadows").GetInt32()));

        // A finished generation shows as a session with its tokens, and in the series second by second.
        var generated = 0;
        await foreach (var _ in moe.GenerateAsync("dash-moe", MoeClient.Tokenize("api "), new GenerationOptions { MaxTokens = 30, RequestId = "dash-request" }, TestContext.Current.CancellationToken))
        {
            generated++;
        }

        var waited = DateTime.UtcNow;
        JsonElement session;
        while (!((deployment = (await GetJsonAsync(http, "/api/moe")).GetProperty("deployments")[0])
            .GetProperty("sessions").EnumerateArray().FirstOrDefault(s => s.GetProperty("request_id").GetString() == "dash-request") is { ValueKind: JsonValueKind.Object } found
            && (session = found).GetProperty("state").GetString() == "done"))
        {
            Assert.True(DateTime.UtcNow - waited < TimeSpan.FromSeconds(20), "the finished session never showed");
            await Delay();
        }

        Assert.Equal((30, 30), (generated, session.GetProperty("tokens").GetInt32()));
        Assert.True(session.GetProperty("tbt_p50_ms").GetDouble() > 0);
        Assert.Equal(30, deployment.GetProperty("series").EnumerateArray().Sum(s => s.GetProperty("tokens_per_second").GetInt32()));

        var victim = cluster.Silos[2];
        await cluster.KillSiloAsync(victim);
        var started = DateTime.UtcNow;
        JsonElement view;
        do
        {
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20), "the failure never showed");
            view = (await GetJsonAsync(http, "/api/moe")).GetProperty("deployments")[0];
        }
        while (!view.GetProperty("events").EnumerateArray().Any(e => e.GetProperty("kind").GetString() == "expert-silo") && await Delay());

        var failure = view.GetProperty("events").EnumerateArray().First(e => e.GetProperty("kind").GetString() == "expert-silo");
        Assert.Equal(victim.Address.ToString(), failure.GetProperty("silo").GetString());
        Assert.True(failure.TryGetProperty("stall_ms", out _));
        Assert.DoesNotContain(view.GetProperty("expert_silos").EnumerateArray(), s => s.GetProperty("silo").GetString() == victim.Address.ToString());
        Assert.Equal(8, view.GetProperty("expert_silos").EnumerateArray().Sum(s => s.GetProperty("primaries").GetInt32()));
    }

    /// <summary>The bundled web UI is served: the page, its script (with the charting library in it) and its styles.</summary>
    [Fact]
    public async Task The_web_UI_is_served()
    {
        await using var cluster = await StartAsync(silos: 1);
        using var http = new HttpClient { BaseAddress = Address(cluster.Silos[0]) };
        using var page = await http.GetAsync("/", TestContext.Current.CancellationToken);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<script src=\"app.js\">", await page.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
        var script = await http.GetStringAsync("/app.js", TestContext.Current.CancellationToken);
        Assert.Contains("/api/events", script, StringComparison.Ordinal);
        Assert.Contains("uplot", script, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/uPlot.min.css", TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/secrets.txt", TestContext.Current.CancellationToken)).StatusCode);
    }

    /// <summary>Binding beyond loopback without a token is refused at start-up, naming the setting.</summary>
    [Fact]
    public void Listening_beyond_loopback_needs_a_token()
    {
        var options = new DashboardOptions { ListenAddress = "0.0.0.0" };
        Assert.Contains("Lifl:Dashboard:AccessToken", options.Problem(), StringComparison.Ordinal);
        Assert.Null(new DashboardOptions { ListenAddress = "0.0.0.0", AccessToken = Token }.Problem());
        Assert.Contains("16 characters", new DashboardOptions { AccessToken = "short" }.Problem(), StringComparison.Ordinal);
        Assert.Contains("Port", new DashboardOptions { Port = 70000 }.Problem(), StringComparison.Ordinal);
        Assert.Null(new DashboardOptions().Problem());
    }

    private static Task<InProcessTestCluster> StartAsync(int silos, Action<DashboardOptions>? configure = null, string? pool = null) =>
        DashboardClusters.StartAsync(silos, pool ?? DashboardClusters.NewPoolName(), everySilo: true, configure);

    private static Uri Address(InProcessSiloHandle silo) => silo.Services.GetRequiredService<DashboardServer>().Address!;

    private static async Task<JsonElement> GetJsonAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path, TestContext.Current.CancellationToken);
        response.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.Clone();
    }

    private static async Task<bool> Delay()
    {
        await Task.Delay(50, TestContext.Current.CancellationToken);
        return true;
    }
}
