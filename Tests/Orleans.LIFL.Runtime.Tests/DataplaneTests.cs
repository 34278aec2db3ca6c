using System.Buffers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Orleans.LIFL.Serialization;
using Orleans.LIFL.TestGrains;
using Orleans.LIFL.TestingHost;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>
/// Shared buffers as grain arguments and results, in one process: within a silo the callee gets a handle on the same
/// bytes; between silos of one node only a descriptor crosses; between nodes the bytes are streamed.
/// </summary>
public sealed class DataplaneTests
{
    private const string Secret = "dataplane-test-secret-0123456789";
    private const int Mebibyte = 1 << 20;

    /// <summary>A grain of the same silo gets its own reference to the very bytes the caller wrote; nothing is copied.</summary>
    [Fact]
    public async Task Within_a_silo_the_callee_gets_a_handle_on_the_same_bytes()
    {
        var name = PoolName();
        await using var cluster = await TestClusters.StartAsync(1, silo => silo.Configure<DataplaneOptions>(o => o.PoolName = name));
        var silo = cluster.Silos[0];
        var pool = silo.Services.GetRequiredService<SharedBufferPool>();
        var courier = silo.GrainFactory.GetGrain<IBufferCourierGrain>(silo.Address.ToString());

        using var buffer = pool.Rent(Mebibyte);
        TestPattern.Fill(buffer.Span, 3);
        var seen = await courier.Receive(buffer);
        Assert.Equal((name, buffer.Descriptor.Offset, TestPattern.Checksum(buffer.Span)), (seen.Pool, seen.Offset, seen.Checksum));
        Assert.Equal(2, seen.ReferencesWhileHeld); // the caller's and the callee's
        Assert.Equal(1, pool.ReferenceCount(buffer.Descriptor)); // the callee disposed its own

        // A returned buffer: the grain keeps its reference, the caller gets another on the same bytes.
        using var made = await courier.Make(4096, 5);
        Assert.Equal(2, pool.ReferenceCount(made.Descriptor));
        var stats = pool.GetStatistics();
        Assert.Equal((0, 0), (stats.BytesCopied, stats.HandOffs));
    }

    /// <summary>A buffer a grain returns without keeping it (moved to the caller) has exactly one reference, the caller's, wherever the caller is.</summary>
    [Fact]
    public async Task A_moved_result_leaves_the_caller_the_only_reference()
    {
        var name = PoolName();
        await using var cluster = await StartTcpClusterAsync(d => d.PoolName = name);
        var (a, b) = (cluster.Silos[0], cluster.Silos[1]);
        var (courierA, courierB) = await CouriersAsync(a, b);
        var poolA = a.Services.GetRequiredService<SharedBufferPool>();
        var poolB = b.Services.GetRequiredService<SharedBufferPool>();
        var handlesA = poolA.GetStatistics().LiveHandles;
        var handlesB = poolB.GetStatistics().LiveHandles;

        using (var local = await courierA.Produce(8192, 31))
        {
            Assert.Equal(1, poolA.ReferenceCount(local.Descriptor));
            Assert.Equal(handlesA + 1, poolA.GetStatistics().LiveHandles);
        }

        using (var remote = await a.GrainFactory.GetGrain<IBufferCourierGrain>(b.Address.ToString()).Produce(8192, 32))
        {
            Assert.Equal(1, poolA.ReferenceCount(remote.Descriptor)); // B let go once the descriptor was on its way
            using var expected = poolA.Rent(8192);
            TestPattern.Fill(expected.Span, 32);
            Assert.True(remote.Span.SequenceEqual(expected.Span));
        }

        Assert.Equal(handlesA, poolA.GetStatistics().LiveHandles);
        Assert.Equal(0, poolA.GetStatistics().LiveBuffers);
        Assert.Equal(handlesB, poolB.GetStatistics().LiveHandles);
        Assert.Equal(0, (await courierB.Pool()).LeakedHandles);
    }

    /// <summary>Between silos of one node (TCP between them) the bytes stay in the shared pool: only the descriptor crosses.</summary>
    [Fact]
    public async Task Between_silos_of_a_node_only_a_descriptor_crosses()
    {
        var name = PoolName();
        await using var cluster = await StartTcpClusterAsync(d => d.PoolName = name);
        var (a, b) = (cluster.Silos[0], cluster.Silos[1]);
        var (courierA, _) = await CouriersAsync(a, b);
        var pool = a.Services.GetRequiredService<SharedBufferPool>();

        // Silos of one process share its attachment to the pool (one slot): one of them stopping unmaps nothing.
        Assert.Same(pool, b.Services.GetRequiredService<SharedBufferPool>());

        var sent = await courierA.SendTo(b.Address.ToString(), 4 * Mebibyte, 7);
        Assert.Equal((name, sent.SentOffset, sent.Sent), (sent.Seen.Pool, sent.Seen.Offset, sent.Seen.Checksum));
        Assert.Equal(b.Address.ToString(), sent.Seen.Silo);
        var fetched = await courierA.FetchFrom(b.Address.ToString(), Mebibyte + 1, 8);
        Assert.Equal(fetched.Sent, fetched.Seen.Checksum);

        Assert.Equal(0, pool.GetStatistics().BytesCopied);
        Assert.Equal((4L * Mebibyte) + Mebibyte + 1, pool.GetStatistics().BytesHandedOff);
    }

    /// <summary>A buffer made by a silo of this process stays readable after that silo stopped: the process's attachment outlives it.</summary>
    [Fact]
    public async Task A_buffer_outlives_the_in_process_silo_that_made_it()
    {
        await using var cluster = await StartTcpClusterAsync(d => d.PoolName = PoolName());
        var (a, b) = (cluster.Silos[0], cluster.Silos[1]);
        _ = await CouriersAsync(a, b);
        using var made = await a.GrainFactory.GetGrain<IBufferCourierGrain>(b.Address.ToString()).Produce(Mebibyte, 41);
        await cluster.KillSiloAsync(b);

        using var expected = a.Services.GetRequiredService<SharedBufferPool>().Rent(Mebibyte);
        TestPattern.Fill(expected.Span, 41);
        Assert.True(made.Span.SequenceEqual(expected.Span));
    }

    /// <summary>
    /// The admission places a killed pool's processes left behind go when a silo maps its pool, even one that never
    /// streams (its links are all on its node); the places of a pool that still exists stay.
    /// </summary>
    [Fact]
    public async Task A_silo_removes_the_places_of_pools_that_are_gone()
    {
        var (gone, live) = (PoolName(), PoolName());
        var orphan = $"/dev/shm/lifl.{gone}.incoming.place.0";
        var kept = $"/dev/shm/lifl.{live}.incoming.place.0";
        File.WriteAllBytes(orphan, []);
        File.WriteAllBytes(kept, []);
        using var existing = SharedBufferPool.Acquire(live, 1L << 24);
        try
        {
            await using var cluster = await StartTcpClusterAsync(d => d.PoolName = PoolName(), silos: 1);
            Assert.NotNull(cluster.Silos[0].Services.GetRequiredService<NodeDataplane>().Pool);
            Assert.False(File.Exists(orphan));
            Assert.True(File.Exists(kept));
        }
        finally
        {
            File.Delete(orphan);
            File.Delete(kept);
        }
    }

    /// <summary>To a silo of another node the bytes are streamed into that node's pool, and results stream back.</summary>
    [Fact]
    public async Task To_another_node_the_bytes_are_streamed_into_its_pool()
    {
        var (nameA, nameB) = (PoolName(), PoolName());
        await using var cluster = await StartTcpClusterAsync(d => d.PoolName = nameA, silos: 1);
        var a = cluster.Silos[0];
        var b = await cluster.StartAdditionalSiloAsync(silo => silo.Configure<DataplaneOptions>(d =>
        {
            d.NodeId = "another-node";
            d.PoolName = nameB;
        }));
        var (courierA, _) = await CouriersAsync(a, b);

        var sent = await courierA.SendTo(b.Address.ToString(), 3 * Mebibyte + 5, 9);
        Assert.Equal((nameB, sent.Sent), (sent.Seen.Pool, sent.Seen.Checksum));
        var fetched = await courierA.FetchFrom(b.Address.ToString(), 2 * Mebibyte, 10);
        Assert.Equal((nameA, fetched.Sent), (fetched.Seen.Pool, fetched.Seen.Checksum));

        var statsA = a.Services.GetRequiredService<SharedBufferPool>().GetStatistics();
        var statsB = b.Services.GetRequiredService<SharedBufferPool>().GetStatistics();
        Assert.Equal(5L * Mebibyte + 5, statsA.BytesCopied);
        Assert.Equal(5L * Mebibyte + 5, statsB.BytesCopied);
        Assert.Equal(0, statsA.HandOffs + statsB.HandOffs);
        Assert.Equal(0, statsA.LeakedHandles + statsB.LeakedHandles);
    }

    /// <summary>A client of the gateway's node hands buffers over by descriptor, both ways, without a byte copied.</summary>
    [Fact]
    public async Task A_client_of_the_node_exchanges_buffers_by_descriptor()
    {
        var name = PoolName();
        await using var cluster = await StartTcpClusterAsync(d => d.PoolName = name, silos: 1);
        using var host = await StartClientAsync(cluster, ("Lifl:Dataplane:PoolName", name));
        var client = host.Services.GetRequiredService<IClusterClient>();
        var pool = host.Services.GetRequiredService<SharedBufferPool>();
        var silo = cluster.Silos[0];
        var courier = silo.GrainFactory.GetGrain<IBufferCourierGrain>(silo.Address.ToString());
        _ = await courier.Pool();

        using var buffer = pool.Rent(2 * Mebibyte);
        TestPattern.Fill(buffer.Span, 21);
        var seen = await client.GetGrain<IBufferCourierGrain>(silo.Address.ToString()).Receive(buffer);
        Assert.Equal((name, buffer.Descriptor.Offset, TestPattern.Checksum(buffer.Span)), (seen.Pool, seen.Offset, seen.Checksum));

        using var made = await client.GetGrain<IBufferCourierGrain>(silo.Address.ToString()).Make(Mebibyte, 22);
        using var expected = pool.Rent(Mebibyte);
        TestPattern.Fill(expected.Span, 22);
        Assert.True(made.Span.SequenceEqual(expected.Span));
        Assert.Equal(0, pool.GetStatistics().BytesCopied + silo.Services.GetRequiredService<SharedBufferPool>().GetStatistics().BytesCopied);
    }

    /// <summary>A client on another node has its own pool: buffers are streamed to and from it.</summary>
    [Fact]
    public async Task A_client_of_another_node_streams_buffers()
    {
        var (siloPool, clientPool) = (PoolName(), PoolName());
        await using var cluster = await StartTcpClusterAsync(d => d.PoolName = siloPool, silos: 1);
        using var host = await StartClientAsync(cluster, ("Lifl:Dataplane:PoolName", clientPool), ("Lifl:Dataplane:NodeId", "trainer-machine"));
        var client = host.Services.GetRequiredService<IClusterClient>();
        var pool = host.Services.GetRequiredService<SharedBufferPool>();
        var silo = cluster.Silos[0];
        _ = await silo.GrainFactory.GetGrain<IBufferCourierGrain>(silo.Address.ToString()).Pool();

        using var buffer = pool.Rent(Mebibyte + 3);
        TestPattern.Fill(buffer.Span, 23);
        var seen = await client.GetGrain<IBufferCourierGrain>(silo.Address.ToString()).Receive(buffer);
        Assert.Equal((siloPool, TestPattern.Checksum(buffer.Span)), (seen.Pool, seen.Checksum));
        using var made = await client.GetGrain<IBufferCourierGrain>(silo.Address.ToString()).Make(4096, 24);
        Assert.Equal(clientPool, made.Pool.Name);
        Assert.Equal(Mebibyte + 3 + 4096, pool.GetStatistics().BytesCopied);
    }

    /// <summary>
    /// With room for one incoming transfer at a time, buffers a client streams all at once still all arrive, intact:
    /// the connections beyond the first wait their turn instead of staging every buffer at once.
    /// </summary>
    [Fact]
    public async Task Streamed_transfers_beyond_the_limit_wait_their_turn()
    {
        var (siloPool, clientPool) = (PoolName(), PoolName());
        await using var cluster = await StartTcpClusterAsync(d => (d.PoolName, d.MaxIncomingTransfers) = (siloPool, 1), silos: 1);
        var silo = cluster.Silos[0];
        _ = await silo.GrainFactory.GetGrain<IBufferCourierGrain>(silo.Address.ToString()).Pool();
        var hosts = new List<IHost>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                hosts.Add(await StartClientAsync(cluster, ("Lifl:Dataplane:PoolName", clientPool), ("Lifl:Dataplane:NodeId", "trainer-machine")));
            }

            var sends = hosts.Select(async (host, i) =>
            {
                using var buffer = host.Services.GetRequiredService<SharedBufferPool>().Rent(3 * Mebibyte);
                TestPattern.Fill(buffer.Span, 50 + i);
                var seen = await host.Services.GetRequiredService<IClusterClient>().GetGrain<IBufferCourierGrain>(silo.Address.ToString()).Receive(buffer);
                return seen.Checksum == TestPattern.Checksum(buffer.Span);
            });
            Assert.All(await Task.WhenAll(sends), Assert.True);
        }
        finally
        {
            hosts.ForEach(h => h.Dispose());
        }
    }

    /// <summary>
    /// A client's streamed buffer keeps its admission place until its call is answered, not only until its bytes are
    /// in: with room for one, a second client's buffer is not taken while the grain still holds the first call, and
    /// is as soon as that call is answered. This is what bounds the updates staged in the pool by what aggregators
    /// have folded.
    /// </summary>
    [Fact]
    public async Task A_client_transfer_holds_its_place_until_its_call_is_answered()
    {
        var (siloPool, clientPool) = (PoolName(), PoolName());
        await using var cluster = await StartTcpClusterAsync(d => (d.PoolName, d.MaxIncomingTransfers) = (siloPool, 1), silos: 1);
        var silo = cluster.Silos[0];
        var receiver = silo.GrainFactory.GetGrain<IGatedReceiverGrain>("gate");
        using var first = await StartClientAsync(cluster, ("Lifl:Dataplane:PoolName", clientPool), ("Lifl:Dataplane:NodeId", "trainer-machine"));
        using var second = await StartClientAsync(cluster, ("Lifl:Dataplane:PoolName", clientPool), ("Lifl:Dataplane:NodeId", "trainer-machine"));

        Task<int> Send(IHost host, int length)
        {
            using var buffer = host.Services.GetRequiredService<SharedBufferPool>().Rent(length);
            return host.Services.GetRequiredService<IClusterClient>().GetGrain<IGatedReceiverGrain>("gate").Take(buffer);
        }

        var held = Send(first, 2 * Mebibyte);
        await receiver.WhenTaken(1).WaitAsync(Signals.Patience, TestContext.Current.CancellationToken);
        var waiting = Send(second, 3 * Mebibyte);

        // Nothing announces a transfer that is not taken: give it the time a 3 MB loopback transfer takes many times over.
        await Task.WhenAny(receiver.WhenTaken(2), Task.Delay(TimeSpan.FromMilliseconds(500), TestContext.Current.CancellationToken));
        Assert.Equal(1, await receiver.Taken());
        Assert.False(held.IsCompleted);

        // The waiting transfer was stopped at its first chunk's header: the silo holds a read's worth of it, not the
        // whole chunk (the rest waits on TCP).
        var waited = silo.Services.GetRequiredService<NodeDataplane>().Admission.PeakWaitingBytes;
        Assert.InRange(waited, 1, StreamingChannel.ChunkBytes / 4);

        await receiver.Open();
        Assert.Equal(2 * Mebibyte, await held.WaitAsync(Signals.Patience, TestContext.Current.CancellationToken));
        await receiver.WhenTaken(2).WaitAsync(Signals.Patience, TestContext.Current.CancellationToken);
        await receiver.Open();
        Assert.Equal(3 * Mebibyte, await waiting.WaitAsync(Signals.Patience, TestContext.Current.CancellationToken));
        Assert.Equal(0, silo.Services.GetRequiredService<SharedBufferPool>().GetStatistics().LiveBuffers);
    }

    /// <summary>
    /// A streamed buffer the receiving pool has no room for fails its call with an error that says so (its bytes are
    /// read and dropped, nothing is staged), and the client's next, smaller buffer arrives intact.
    /// </summary>
    [Fact]
    public async Task A_streamed_buffer_the_pool_cannot_hold_fails_its_call_and_the_next_one_arrives()
    {
        var (siloPool, clientPool) = (PoolName(), PoolName());
        await using var cluster = await StartTcpClusterAsync(d => (d.PoolName, d.PoolCapacity) = (siloPool, 8 * Mebibyte), silos: 1);
        var silo = cluster.Silos[0];
        _ = await silo.GrainFactory.GetGrain<IBufferCourierGrain>(silo.Address.ToString()).Pool();
        using var host = await StartClientAsync(cluster, ("Lifl:Dataplane:PoolName", clientPool), ("Lifl:Dataplane:NodeId", "trainer-machine"));
        var pool = host.Services.GetRequiredService<SharedBufferPool>();
        var courier = host.Services.GetRequiredService<IClusterClient>().GetGrain<IBufferCourierGrain>(silo.Address.ToString());
        var before = silo.Services.GetRequiredService<SharedBufferPool>().GetStatistics();

        using (var large = pool.Rent(16 * Mebibyte))
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => courier.Receive(large));
            Assert.Contains("could not be received here", error.Message, StringComparison.Ordinal);
            Assert.Contains(siloPool, error.Message, StringComparison.Ordinal);
        }

        using var small = pool.Rent(Mebibyte);
        TestPattern.Fill(small.Span, 7);
        var seen = await courier.Receive(small);
        Assert.Equal(TestPattern.Checksum(small.Span), seen.Checksum);
        Assert.Equal(before.LiveBuffers, silo.Services.GetRequiredService<SharedBufferPool>().GetStatistics().LiveBuffers);
    }

    /// <summary>The admission lets in at most its limit, and a waiter learns when one leaves.</summary>
    [Fact]
    public async Task Transfer_admission_keeps_to_its_limit()
    {
        var admission = new TransferAdmission(2);
        Assert.True(admission.TryEnter());
        Assert.True(admission.TryEnter());
        Assert.False(admission.TryEnter());
        var room = admission.WhenRoomAsync();
        Assert.False(room.IsCompleted);
        admission.Exit();
        await room.WaitAsync(TestContext.Current.CancellationToken);
        Assert.True(admission.TryEnter());
        Assert.Equal(2, admission.Active);
    }

    /// <summary>
    /// Two silos' admissions sharing the node's places keep to one limit together: with one place, the second silo
    /// admits nothing while the first receives, and its waiting transfer learns when the first one's place is free.
    /// </summary>
    [Fact]
    public async Task Transfer_admissions_sharing_the_nodes_places_keep_to_one_limit()
    {
        var places = PoolName() + ".incoming";
        using var first = new TransferAdmission(2, new NodePlaces(places, 1));
        using var second = new TransferAdmission(2, new NodePlaces(places, 1));
        Assert.Equal(1, first.Limit);
        Assert.True(first.TryEnter());
        Assert.False(second.TryEnter());
        var room = second.WhenRoomAsync();
        Assert.False(room.IsCompleted);

        first.Exit();
        await room.WaitAsync(Signals.Patience, TestContext.Current.CancellationToken);
        Assert.True(second.TryEnter());
        Assert.False(first.TryEnter());
        Assert.Equal((0, 1), (first.Active, second.Active));
    }

    /// <summary>A client whose dataplane is off cannot send a shared buffer: the call fails at once, saying why.</summary>
    [Fact]
    public async Task A_client_without_a_pool_is_told_it_cannot_send_a_shared_buffer()
    {
        var name = PoolName();
        await using var cluster = await StartTcpClusterAsync(d => d.PoolName = name, silos: 1);
        using var host = await StartClientAsync(cluster, ("Lifl:Dataplane:Enabled", "false"));
        var client = host.Services.GetRequiredService<IClusterClient>();

        using var pool = SharedBufferPool.Open(name);
        using var buffer = pool.Rent(4096);
        var courier = client.GetGrain<IBufferCourierGrain>(cluster.Silos[0].Address.ToString());
        var error = await Assert.ThrowsAnyAsync<Exception>(() => courier.Receive(buffer));
        Assert.Contains("SharedBuffer can only cross a link between processes that have a shared pool", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, pool.ReferenceCount(buffer.Descriptor)); // the failed call's copy was dropped
        Assert.Equal(name, (await courier.Pool()).Pool); // the silo serves on
    }

    private static async Task<IHost> StartClientAsync(InProcessTestCluster cluster, params (string Key, string Value)[] settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Configuration["Lifl:Cluster:Secret"] = Secret;
        foreach (var (key, value) in settings)
        {
            builder.Configuration[key] = value;
        }

        builder.UseLiflClient(client => client.UseStaticGateways([.. cluster.GatewayEndpoints]));
        var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        return host;
    }

    /// <summary>A descriptor naming a freed buffer, or bytes outside the pool, is refused with an error that says so.</summary>
    [Fact]
    public void Forged_descriptors_are_refused()
    {
        using var pool = SharedBufferPool.Open(PoolName(), 16 * Mebibyte);
        var channel = new DescriptorChannel(pool, peerSlot: pool.Slot);
        BufferDescriptor freed;
        using (var buffer = pool.Rent(8192))
        {
            freed = buffer.Descriptor;
        }

        var stale = Assert.Throws<SerializationException>(() => Read(channel, Encode(freed)));
        Assert.Contains("names no live buffer", stale.Message, StringComparison.Ordinal);

        var outside = Assert.Throws<SerializationException>(() => Read(channel, Encode(freed with { Offset = (ulong)pool.Capacity })));
        Assert.Contains("does not fit pool", outside.Message, StringComparison.Ordinal);

        var unaligned = Assert.Throws<SerializationException>(() => Read(channel, Encode(freed with { Offset = 100 })));
        Assert.Contains("does not fit pool", unaligned.Message, StringComparison.Ordinal);
        Assert.Equal(0, pool.GetStatistics().LiveBuffers);
    }

    private static SharedBuffer Read(DescriptorChannel channel, byte[] encoded)
    {
        var reader = new Reader(encoded);
        return channel.Read(ref reader);
    }

    /// <summary>A descriptor as a peer would write it (the fields of DescriptorChannel.Write).</summary>
    private static byte[] Encode(BufferDescriptor descriptor)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new Writer(output);
        Codec<byte>.WriteField(ref writer, 0, 1);
        Codec<ulong>.WriteField(ref writer, 1, descriptor.Offset);
        Codec<ulong>.WriteField(ref writer, 2, descriptor.Length);
        Codec<uint>.WriteField(ref writer, 3, descriptor.Record);
        Codec<uint>.WriteField(ref writer, 4, descriptor.Generation);
        writer.WriteEndTag();
        writer.Commit();
        return output.WrittenSpan.ToArray();
    }

    private static string PoolName() => "t" + Guid.NewGuid().ToString("N")[..12];

    private static Task<InProcessTestCluster> StartTcpClusterAsync(Action<DataplaneOptions> dataplane, int silos = 2) =>
        InProcessTestCluster.StartAsync(options =>
        {
            options.InitialSilosCount = silos;
            options.TcpSecret = Secret;
            options.ConfigureSilo = silo => silo.Configure<DataplaneOptions>(d =>
            {
                d.Ebpf = false; // the cluster tests cover eBPF between real processes
                dataplane(d);
            });
        });

    /// <summary>The couriers of both silos, each activated on its own silo.</summary>
    private static async Task<(IBufferCourierGrain A, IBufferCourierGrain B)> CouriersAsync(InProcessSiloHandle a, InProcessSiloHandle b)
    {
        var courierA = a.GrainFactory.GetGrain<IBufferCourierGrain>(a.Address.ToString());
        var courierB = b.GrainFactory.GetGrain<IBufferCourierGrain>(b.Address.ToString());
        Assert.Equal(a.Address.ToString(), (await courierA.Pool()).Silo);
        Assert.Equal(b.Address.ToString(), (await courierB.Pool()).Silo);
        return (courierA, courierB);
    }
}
