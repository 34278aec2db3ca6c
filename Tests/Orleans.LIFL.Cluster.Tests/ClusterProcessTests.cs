using System.Net;
using System.Net.Sockets;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Silo;
using Orleans.LIFL.TestGrains;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;

namespace Orleans.LIFL.Cluster.Tests;

/// <summary>
/// Real silo processes on loopback with membership, directory and grain state in a real PostgreSQL: joining,
/// kill -9, partition, gateway failover, single activation, and hostile input.
/// </summary>
public sealed class ClusterProcessTests(PostgresServer server)
{
    /// <summary>Three silos started together all become Active, and each one's own view agrees with the table.</summary>
    [Fact]
    public async Task Three_silos_join_and_agree_on_membership()
    {
        await using var cluster = await ProcessCluster.StartAsync(server, silos: 3);
        var addresses = cluster.Silos.Select(s => s.SiloAddress).Order(StringComparer.Ordinal).ToList();
        var rows = await cluster.ReadMembershipAsync();
        Assert.Equal(addresses, rows.Where(r => r.Value == ProcessCluster.Active).Select(r => r.Key).Order(StringComparer.Ordinal));

        foreach (var silo in cluster.Silos)
        {
            var inspector = await cluster.InspectorAsync(silo);
            Assert.Equal(silo.SiloAddress, await inspector.Silo());
            await WaitUntilAsync(async () => (await inspector.ActiveSilos()).Order(StringComparer.Ordinal).SequenceEqual(addresses), $"{silo.SiloAddress} to see all three silos");
        }
    }

    /// <summary>
    /// kill -9 of a silo: it is declared dead (two votes in the table), its grains come back on the others with
    /// their state, calls in progress on it fail at once, and no grain ever has two activations.
    /// </summary>
    [Fact]
    public async Task Killed_silo_is_declared_dead_and_its_grains_move()
    {
        await using var cluster = await ProcessCluster.StartAsync(server, silos: 3);
        var client = await cluster.ConnectAsync(cluster.Silos.Select(s => s.Gateway));
        var keys = Enumerable.Range(0, 60).Select(i => $"k{i}").ToList();
        var before = new Dictionary<string, string>();
        foreach (var key in keys)
        {
            Assert.Equal(1, await client.GetGrain<ICounterGrain>(key).Increment());
            before[key] = await client.GetGrain<ICounterGrain>(key).Silo();
        }

        var victim = cluster.Silos[2];
        var moved = keys.Where(k => before[k] == victim.SiloAddress).ToList();
        Assert.NotEmpty(moved);
        Assert.NotEmpty(keys.Except(moved));
        var inProgress = client.GetGrain<ICounterGrain>(moved[0]).Hold(TimeSpan.FromMinutes(5));

        victim.Kill();
        var failed = await Assert.ThrowsAsync<SiloUnavailableException>(() => inProgress.WaitAsync(ProcessCluster.Patience, TestContext.Current.CancellationToken));
        Assert.Contains(victim.SiloAddress, failed.Message, StringComparison.Ordinal);
        var declared = await cluster.WaitForMembershipAsync(rows => rows[victim.SiloAddress] == ProcessCluster.Dead, "the killed silo to be declared dead");
        Assert.True(declared < TimeSpan.FromSeconds(15), $"declared dead after {declared}");

        foreach (var key in moved)
        {
            Assert.Equal(2, await client.GetGrain<ICounterGrain>(key).Increment());
            Assert.NotEqual(victim.SiloAddress, await client.GetGrain<ICounterGrain>(key).Silo());
        }

        foreach (var key in keys.Except(moved))
        {
            Assert.Equal(2, await client.GetGrain<ICounterGrain>(key).Increment());
            Assert.Equal(before[key], await client.GetGrain<ICounterGrain>(key).Silo());
        }

        await AssertSingleActivationsAsync(cluster, cluster.Silos.Take(2), keys);
    }

    /// <summary>A client whose only configured gateway dies fails its waiting call at once and carries on through the others.</summary>
    [Fact]
    public async Task Client_carries_on_when_its_gateway_dies()
    {
        await using var cluster = await ProcessCluster.StartAsync(server, silos: 3);
        var gateway = cluster.Silos[0];
        var client = await cluster.ConnectAsync([gateway.Gateway]);
        Assert.Equal(1, await client.GetGrain<ICounterGrain>("before").Increment());

        var holdingKey = await FindKeyOnAsync(client, cluster.Silos[1]);
        var waiting = client.GetGrain<ICounterGrain>(holdingKey).Hold(TimeSpan.FromMinutes(5));
        var beacon = Path.Combine("/dev/shm", "lifl.beacon." + ProcessBeacon.NameOf(gateway.SiloAddress));
        Assert.True(File.Exists(beacon), $"the gateway silo lit no node beacon ({beacon})");
        gateway.Kill();
        await Assert.ThrowsAsync<SiloUnavailableException>(() => waiting.WaitAsync(ProcessCluster.Patience, TestContext.Current.CancellationToken));

        // Its watchers on this node (the client, the other silos) heard of the death from its beacon, not only from their
        // connections' end of file: a dead process cannot remove its beacon, a watcher that saw it die does.
        await WaitUntilAsync(() => Task.FromResult(!File.Exists(beacon)), "a watcher to see the gateway's beacon die and remove it");

        // The grain lives on silo 1, which is fine: the client reaches it through another gateway it learned of.
        Assert.Equal(1, await client.GetGrain<ICounterGrain>(holdingKey).Increment());
        await cluster.WaitForMembershipAsync(rows => rows[gateway.SiloAddress] == ProcessCluster.Dead, "the dead gateway to be declared dead");
        Assert.Equal(2, await client.GetGrain<ICounterGrain>("before").Increment());
    }

    /// <summary>A silo cut off from the others (frozen) is declared dead, and when it comes back it stops itself.</summary>
    [Fact]
    public async Task Partitioned_silo_declared_dead_stops_itself()
    {
        await using var cluster = await ProcessCluster.StartAsync(server, silos: 3);
        var isolated = cluster.Silos[1];
        isolated.Freeze();
        await cluster.WaitForMembershipAsync(rows => rows[isolated.SiloAddress] == ProcessCluster.Dead, "the frozen silo to be declared dead");

        isolated.Resume();
        await isolated.Exited.WaitAsync(ProcessCluster.Patience, TestContext.Current.CancellationToken);
        Assert.Equal(SiloProgram.ExitDeclaredDead, isolated.ExitCode);
        Assert.Contains("declared dead", isolated.RecentOutput, StringComparison.Ordinal);

        var survivors = await cluster.ReadMembershipAsync();
        Assert.Equal(2, survivors.Count(r => r.Value == ProcessCluster.Active));
    }

    /// <summary>A silo told to keep grain state somewhere it does not know refuses to start, and says what it was told.</summary>
    [Fact]
    public async Task An_unknown_storage_kind_stops_the_silo_with_the_reason()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            ProcessCluster.StartAsync(server, silos: 1, siloArguments: _ => ["--storage", "disk"]));
        Assert.Contains("Lifl:Silo:Storage (--storage) is 'disk'", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Garbage on both ports, a wrong secret and a wrong cluster id are refused; the silo goes on serving.</summary>
    [Fact]
    public async Task Bad_input_is_refused_without_harm()
    {
        await using var cluster = await ProcessCluster.StartAsync(server, silos: 1);
        var silo = cluster.Silos[0];
        var siloEndpoint = IPEndPoint.Parse(silo.SiloAddress[..silo.SiloAddress.LastIndexOf('@')]);
        foreach (var endpoint in new[] { siloEndpoint, IPEndPoint.Parse(silo.Gateway) })
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(endpoint, TestContext.Current.CancellationToken);
            await socket.SendAsync(new byte[] { 0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3 }, TestContext.Current.CancellationToken);
            var read = await socket.ReceiveAsync(new byte[16], TestContext.Current.CancellationToken).AsTask()
                .WaitAsync(ProcessCluster.Patience, TestContext.Current.CancellationToken);
            Assert.Equal(0, read);
        }

        var secret = await Assert.ThrowsAnyAsync<Exception>(() => cluster.ConnectAsync([silo.Gateway], secret: "a-wrong-secret-0123456789"));
        Assert.Contains("secret", secret.Message, StringComparison.OrdinalIgnoreCase);
        var clusterId = await Assert.ThrowsAnyAsync<Exception>(() => cluster.ConnectAsync([silo.Gateway], clusterId: "someone-else"));
        Assert.Contains("someone-else", clusterId.Message, StringComparison.Ordinal);

        var client = await cluster.ConnectAsync([silo.Gateway]);
        Assert.Equal(1, await client.GetGrain<ICounterGrain>("still-serving").Increment());
        Assert.False(silo.HasExited);
        Assert.Contains("Refused a", silo.RecentOutput, StringComparison.Ordinal);
    }

    private static async Task<string> FindKeyOnAsync(IClusterClient client, SiloProcess silo)
    {
        for (var i = 0; i < 200; i++)
        {
            var key = $"on-{silo.SiloAddress}-{i}";
            if (await client.GetGrain<ICounterGrain>(key).Silo() == silo.SiloAddress)
            {
                return key;
            }
        }

        throw new InvalidOperationException($"No grain was placed on {silo.SiloAddress} in 200 tries.");
    }

    /// <summary>Each key is active on exactly one silo, and that is the silo the directory names.</summary>
    private static async Task AssertSingleActivationsAsync(ProcessCluster cluster, IEnumerable<SiloProcess> silos, IReadOnlyList<string> keys)
    {
        var where = new Dictionary<string, List<string>>();
        foreach (var silo in silos)
        {
            var inspector = await cluster.InspectorAsync(silo);
            foreach (var key in await inspector.ActiveKeys(CounterGrain.GrainTypeName))
            {
                (where.TryGetValue(key, out var list) ? list : where[key] = []).Add(silo.SiloAddress);
            }
        }

        var directory = await cluster.ReadDirectoryAsync(CounterGrain.GrainTypeName);
        foreach (var key in keys)
        {
            var hosts = Assert.Single(where[key] ?? []);
            Assert.Equal(hosts, directory[key]);
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var started = DateTime.UtcNow;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow - started < ProcessCluster.Patience, $"Timed out waiting for {what}.");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
