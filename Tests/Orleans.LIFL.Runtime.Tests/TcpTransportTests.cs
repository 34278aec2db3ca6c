using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.MembershipService;
using Orleans.LIFL.Runtime.Networking;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Orleans.LIFL.Streams;
using Orleans.LIFL.TestingHost;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>Silos and clients over real TCP connections on loopback (in-memory membership, so no database needed).</summary>
public sealed class TcpTransportTests : IAsyncLifetime
{
    private const string Secret = "tcp-test-secret-0123456789";
    private InProcessTestCluster _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await StartTcpClusterAsync(silos: 2);

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    private static Task<InProcessTestCluster> StartTcpClusterAsync(int silos) =>
        InProcessTestCluster.StartAsync(options =>
        {
            options.InitialSilosCount = silos;
            options.TcpSecret = Secret;
            options.ConfigureSilo = silo =>
            {
                silo.AddMemoryGrainStorageAsDefault().AddMemoryStreams("Default");
                silo.Services.AddSingleton<IGreetingService, GreetingService>();
            };
        });

    private static async Task<IHost> StartClientAsync(
        IEnumerable<string> gateways, string secret = Secret, string clusterId = ClusterOptions.DefaultClusterId, TimeProvider? time = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Configuration["Lifl:Cluster:Secret"] = secret;
        builder.Configuration["Lifl:Cluster:ClusterId"] = clusterId;
        builder.UseLiflClient(client => client.UseStaticGateways([.. gateways]));
        if (time is not null)
        {
            builder.Services.AddSingleton(time);
        }
        var host = builder.Build();
        try
        {
            await host.StartAsync(TestContext.Current.CancellationToken);
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return host;
    }

    /// <summary>A call from one silo to a grain on another travels over TCP, with its result, and errors keep their type.</summary>
    [Fact]
    public async Task Calls_cross_silos_over_tcp()
    {
        var (a, b) = (_cluster.Silos[0], _cluster.Silos[1]);
        var key = TestClusters.Key();
        Assert.Equal(b.Address.ToString(), await b.GrainFactory.GetGrain<ILocalPlacedGrain>(key).Silo());

        var fromA = a.GrainFactory.GetGrain<ILocalPlacedGrain>(key);
        Assert.Equal(b.Address.ToString(), await fromA.Silo());

        var payload = new Payload { Name = "over tcp", Values = [1, 2, 3], Table = { ["t"] = [4] } };
        var copy = await b.GrainFactory.GetGrain<ICopyGrain>(key).Store(payload);
        var stored = await a.GrainFactory.GetGrain<ICopyGrain>(key).Get();
        Assert.Equal(payload.Values, stored.Values);
        Assert.Equal([4], copy.Table["t"]);

        var error = await Assert.ThrowsAsync<CustomGrainException>(() => a.GrainFactory.GetGrain<IThrowingGrain>(key).ThrowCustom("remote failure"));
        Assert.Equal("remote failure", error.Message);
    }

    /// <summary>A call chain that comes back to a busy grain through another silo is reported as a deadlock, not a timeout.</summary>
    [Fact]
    public async Task Deadlock_across_silos_is_detected()
    {
        var (a, b) = (_cluster.Silos[0], _cluster.Silos[1]);
        var onA = a.GrainFactory.GetGrain<ILocalDeadlockGrain>(TestClusters.Key("a-"));
        var onB = b.GrainFactory.GetGrain<ILocalDeadlockGrain>(TestClusters.Key("b-"));
        await Task.WhenAll(onA.Ping(), onB.Ping());
        Assert.Same(a, _cluster.FindSiloHosting(onA));
        Assert.Same(b, _cluster.FindSiloHosting(onB));

        var started = DateTime.UtcNow;
        var error = await Assert.ThrowsAsync<DeadlockException>(() => onA.CallThrough(onB));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10), "the deadlock was found by a timeout, not detected");
        Assert.Contains("across silos", error.Message, StringComparison.Ordinal);
        Assert.Contains(onA.GetPrimaryKeyString(), error.Message, StringComparison.Ordinal);
    }

    /// <summary>An external client over TCP calls grains, receives observer callbacks and stream events.</summary>
    [Fact]
    public async Task External_client_calls_observes_and_subscribes()
    {
        using var host = await StartClientAsync(_cluster.GatewayEndpoints);
        var client = host.Services.GetRequiredService<IClusterClient>();
        Assert.Equal("e:hi", await client.GetGrain<IEchoGrain>("e").Echo("hi"));
        Assert.Equal("hello, ext", await client.GetGrain<IDependencyGrain>("ext").Greet());

        var observer = new ChannelNotifier();
        var reference = client.CreateObjectReference<INotifier>(observer);
        await client.GetGrain<INotifyingGrain>("n").Send(reference, "callback");
        Assert.Equal("callback", await observer.Messages.Reader.ReadAsync(TestContext.Current.CancellationToken).WithPatience());

        var key = TestClusters.Key();
        var received = System.Threading.Channels.Channel.CreateUnbounded<string>();
        var stream = client.GetStreamProvider("Default").GetStream<string>(StreamId.Create("client-test", key));
        await stream.SubscribeAsync((item, _) => received.Writer.WriteAsync(item).AsTask());
        await client.GetGrain<IProducerGrain>("p").Produce("client-test", key, "event");
        Assert.Equal("event", await received.Reader.ReadAsync(TestContext.Current.CancellationToken).WithPatience());

        await client.GetStreamProvider("Default").GetStream<string>(StreamId.Create("implicit-test", key)).OnNextAsync("implicit");
        await Signals.WaitAsync($"{key}/got/implicit");
    }

    /// <summary>A client with the wrong secret or another cluster id is refused with a clear error, and the silo serves others unharmed.</summary>
    [Fact]
    public async Task Wrong_secret_or_cluster_is_refused()
    {
        var wrongSecret = await Assert.ThrowsAnyAsync<Exception>(() => StartClientAsync(_cluster.GatewayEndpoints, secret: "not-the-cluster-secret"));
        Assert.Contains("secret", wrongSecret.Message, StringComparison.OrdinalIgnoreCase);

        var wrongCluster = await Assert.ThrowsAnyAsync<Exception>(() => StartClientAsync(_cluster.GatewayEndpoints, clusterId: "another-cluster"));
        Assert.Contains("another-cluster", wrongCluster.Message, StringComparison.Ordinal);

        using var good = await StartClientAsync(_cluster.GatewayEndpoints);
        Assert.Equal("g:ok", await good.Services.GetRequiredService<IClusterClient>().GetGrain<IEchoGrain>("g").Echo("ok"));
    }

    /// <summary>
    /// A TCP silo lights its node beacon while it runs (the processes of its node watch it, to hear of its death before
    /// its sockets close) and puts it out when it stops: a stop is no death to its watchers.
    /// </summary>
    [Fact]
    public async Task A_silo_lights_its_node_beacon_while_it_runs_and_puts_it_out_when_it_stops()
    {
        var silo = await _cluster.StartAdditionalSiloAsync();
        var name = ProcessBeacon.NameOf(silo.Address.ToString());
        var file = Path.Combine("/dev/shm", "lifl.beacon." + name);
        Assert.True(File.Exists(file), $"no beacon at {file}");
        var died = 0;
        using var watch = BeaconWatch.Open("/dev/shm", name, () => Interlocked.Increment(ref died));
        Assert.NotNull(watch);

        await _cluster.StopSiloAsync(silo);
        Assert.Equal(BeaconState.Out, await watch.Ended.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
        Assert.Equal(0, died);
        Assert.False(File.Exists(file));
    }

    [Theory]
    [InlineData("relative/dir", false)]
    [InlineData("/dev/shm", true)]
    [InlineData("", true)]
    [InlineData(null, true)]
    public void The_beacon_directory_is_absolute_or_empty(string? directory, bool valid)
    {
        var result = new ConnectionOptionsValidator().Validate(null, new ConnectionOptions { BeaconDirectory = directory });
        Assert.Equal(valid, result.Succeeded);
        if (!valid)
        {
            Assert.Contains($"BeaconDirectory '{directory}' is not an absolute path", result.FailureMessage, StringComparison.Ordinal);
        }
    }

    /// <summary>Garbage, a hostile frame length, and malformed frames after a valid handshake each only lose their own connection.</summary>
    [Fact]
    public async Task Bad_frames_are_dropped_without_harm()
    {
        var silo = _cluster.Silos[0];
        var endpoint = silo.Address.Endpoint;

        // Random bytes instead of a handshake.
        Assert.True(await SendAndSeeClosedAsync(endpoint, [0x13, 0x37, 0xFF, 0x00, 0x42, 0x42, 0x42]));

        // A frame claiming 2 GB.
        var huge = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(huge, int.MaxValue);
        Assert.True(await SendAndSeeClosedAsync(endpoint, huge));

        // A correct handshake, then a request frame whose header is truncated.
        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(endpoint, TestContext.Current.CancellationToken);
            var stream = new NetworkStream(socket);
            var input = PipeReader.Create(stream);
            await Handshake.InitiateAsync(stream, input, ClusterOptions.DefaultClusterId, Handshake.SecretBytes(Secret),
                new PeerIdentity(PeerRole.Silo, "127.0.0.1:1@1"), TestContext.Current.CancellationToken);
            var frame = new byte[] { 3, 0, 0, 0, (byte)FrameKind.Request, 0x05, 0x01 };
            await stream.WriteAsync(frame, TestContext.Current.CancellationToken);
            var read = await stream.ReadAsync(new byte[16], TestContext.Current.CancellationToken).AsTask().WithPatience();
            Assert.Equal(0, read);
        }

        Assert.Equal("after:ok", await silo.GrainFactory.GetGrain<IEchoGrain>("after").Echo("ok"));
        Assert.Equal(_cluster.Silos[1].Address.ToString(), await _cluster.Silos[1].GrainFactory.GetGrain<ILocalPlacedGrain>("p").Silo());
        Assert.Equal(_cluster.Silos[1].Address.ToString(), await silo.GrainFactory.GetGrain<ILocalPlacedGrain>("p").Silo());
    }

    /// <summary>
    /// A silo stops reading a connection once it holds its limit of unanswered requests, and reads on as they are
    /// answered: a client flooding a slow grain cannot make the silo take in unbounded work.
    /// </summary>
    [Fact]
    public async Task Silo_stops_reading_a_connection_at_its_in_flight_limit()
    {
        const int limit = 4;
        const int calls = 10;
        await using var cluster = await InProcessTestCluster.StartAsync(options =>
        {
            options.InitialSilosCount = 1;
            options.TcpSecret = Secret;
            options.ConfigureSilo = silo => silo.Services.Configure<ConnectionOptions>(o => o.MaxInFlightRequests = limit);
        });
        using var host = await StartClientAsync(cluster.GatewayEndpoints);
        var client = host.Services.GetRequiredService<IClusterClient>();
        var scope = Signals.NewScope();

        var held = Enumerable.Range(0, calls).Select(i => client.GetGrain<IGatedGrain>($"{scope}-{i}").Hold(scope, i)).ToArray();
        var probe = client.GetGrain<IGatedGrain>($"{scope}-probe").Probe(scope);

        // The silo reads frames in call order: the first `limit` calls enter before any gate opens.
        await Task.WhenAll(Enumerable.Range(0, limit).Select(i => Signals.WaitAsync($"{scope}/entered/{i}")));

        // Then open the gates one by one in call order; each call must have entered first.
        for (var i = 0; i < calls; i++)
        {
            await Signals.WaitAsync($"{scope}/entered/{i}");
            Signals.Increment($"{scope}/released");
            Signals.Set($"{scope}/gate/{i}");
            await held[i].WithPatience();
        }

        var heldAtEntry = await Task.WhenAll(held);
        Assert.All(heldAtEntry, h => Assert.InRange(h, 1, limit));
        Assert.Equal(limit, heldAtEntry.Max());

        // The probe was sent after all held calls: the silo read it only once enough of them were answered.
        Assert.InRange(await probe.WithPatience(), calls - limit, calls);
    }

    private static async Task<bool> SendAndSeeClosedAsync(IPEndPoint endpoint, byte[] bytes)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint, TestContext.Current.CancellationToken);
        await socket.SendAsync(bytes, TestContext.Current.CancellationToken);

        // The silo must close the connection (a reset counts); it may not answer with anything first.
        try
        {
            var read = await socket.ReceiveAsync(new byte[64], TestContext.Current.CancellationToken).AsTask().WithPatience();
            return read == 0;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    /// <summary>A silo that dies is found by the others' probes and declared dead; its grains come back on a survivor.</summary>
    [Fact]
    public async Task Dead_silo_is_detected_by_probes()
    {
        await using var cluster = await StartTcpClusterAsync(silos: 3);
        var victim = cluster.Silos[2];
        var key = TestClusters.Key();
        Assert.Equal(victim.Address.ToString(), await victim.GrainFactory.GetGrain<ILocalLifecycleGrain>(key).Silo());

        var survivor = cluster.Silos[0];
        var declared = survivor.Silo.Membership.WaitForStatusAsync(victim.Address, SiloStatus.Dead, TestContext.Current.CancellationToken);
        var killedAt = DateTime.UtcNow;
        await cluster.KillSiloAsync(victim);
        await declared.WithPatience();
        Assert.True(DateTime.UtcNow - killedAt < TimeSpan.FromSeconds(10), $"declared dead only after {DateTime.UtcNow - killedAt}");

        Assert.NotEqual(victim.Address.ToString(), await survivor.GrainFactory.GetGrain<ILocalLifecycleGrain>(key).Silo());
        Assert.Equal(2, Signals.Count($"{key}/activations"));
    }

    /// <summary>
    /// A client keeps a standby connection to a gateway of another silo (learned from the cluster view, though it was
    /// configured with one gateway only). When its gateway dies, its waiting call fails at once and the standby takes
    /// over: the client carries on through it, with no new connection to the surviving gateway.
    /// </summary>
    [Fact]
    public async Task Client_fails_over_to_its_standby_gateway_when_its_gateway_dies()
    {
        await using var cluster = await StartTcpClusterAsync(silos: 2);
        using var host = await StartClientAsync([cluster.GatewayEndpoints[0]]);
        var client = host.Services.GetRequiredService<IClusterClient>();
        Assert.Equal("f:1", await client.GetGrain<IEchoGrain>("f").Echo("1"));

        var gateway = cluster.Silos[0];
        var survivor = cluster.Silos[1].Silo;
        await Signals.UntilAsync(() => survivor.ConnectedClients > 0, "the client opened no standby connection to the other gateway");

        // One connection to each silo: the standby did not go to the active gateway (which would have closed the first).
        Assert.Equal(1, gateway.Silo.AcceptedClientConnections);
        var accepted = survivor.AcceptedClientConnections;
        Assert.Equal(1, accepted);

        var s = Signals.NewScope();
        var waiting = client.GetGrain<IGateGrain>(s).Hold($"{s}/held", $"{s}/never");
        await Signals.WaitAsync($"{s}/held");
        var declared = cluster.Silos[1].Silo.Membership.WaitForStatusAsync(gateway.Address, SiloStatus.Dead, TestContext.Current.CancellationToken);
        await cluster.KillSiloAsync(gateway);
        await Assert.ThrowsAsync<SiloUnavailableException>(() => waiting.WithPatience());

        // Grains of the dead gateway come back once its death is declared; the client goes on through the standby.
        await declared.WithPatience();
        Assert.Equal("f:2", await client.GetGrain<IEchoGrain>("f").Echo("2").WithPatience());
        Assert.Equal(cluster.Silos[1].Address.ToString(), await client.GetGrain<IEchoGrain>("f").WhereAmI());
        Assert.Equal(accepted, survivor.AcceptedClientConnections);
        Assert.Equal(1, survivor.ConnectedClients);
    }

    /// <summary>
    /// A client opens its standby as soon as the cluster view names another silo's gateway: its clock does not move in
    /// this test, so nothing waiting on it could. After losing its gateway it opens the next standby only a second later
    /// on that clock, not in the failover's stall.
    /// </summary>
    [Fact]
    public async Task Client_opens_its_standby_at_once_but_not_right_after_losing_its_gateway()
    {
        await using var cluster = await StartTcpClusterAsync(silos: 3);
        var time = new ManualTimeProvider();
        using var host = await StartClientAsync([cluster.GatewayEndpoints[0]], time: time);
        var client = host.Services.GetRequiredService<IClusterClient>();
        Assert.Equal("f:1", await client.GetGrain<IEchoGrain>("f").Echo("1"));

        var gateway = cluster.Silos[0];
        var others = cluster.Silos.Skip(1).ToList();
        await Signals.UntilAsync(() => others.Sum(s => s.Silo.ConnectedClients) > 0, "the client opened no standby connection while its clock stood still");
        var standby = Assert.Single(others, s => s.Silo.ConnectedClients > 0);
        var third = others.Single(s => s != standby);

        var declared = standby.Silo.Membership.WaitForStatusAsync(gateway.Address, SiloStatus.Dead, TestContext.Current.CancellationToken);
        await cluster.KillSiloAsync(gateway);
        await declared.WithPatience();
        Assert.Equal("g:1", await client.GetGrain<IEchoGrain>("g").Echo("1").WithPatience());
        Assert.Equal(1, standby.Silo.AcceptedClientConnections);
        Assert.Equal(0, third.Silo.ConnectedClients);

        time.Advance(TimeSpan.FromSeconds(1));
        await Signals.UntilAsync(() => third.Silo.ConnectedClients > 0, "the client opened no new standby a second after losing its gateway");
        Assert.Equal(1, standby.Silo.ConnectedClients);
    }

    private sealed class ChannelNotifier : INotifier
    {
        public System.Threading.Channels.Channel<string> Messages { get; } = System.Threading.Channels.Channel.CreateUnbounded<string>();

        public Task Notify(string message) => Messages.Writer.WriteAsync(message).AsTask();
    }
}
