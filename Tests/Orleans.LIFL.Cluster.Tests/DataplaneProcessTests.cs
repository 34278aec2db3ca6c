using Orleans.LIFL.Dataplane;
using Orleans.LIFL.TestGrains;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;

namespace Orleans.LIFL.Cluster.Tests;

/// <summary>Shared buffers between real silo processes: by descriptor on one node, streamed between nodes, reclaimed after kill -9.</summary>
public sealed class DataplaneProcessTests(PostgresServer postgres)
{
    private const int Mebibyte = 1 << 20;

    /// <summary>A 256 MB buffer reaches a silo of the same node intact with no byte copied, and no reference is left behind.</summary>
    [Fact]
    public async Task Buffer_crosses_to_a_silo_of_the_same_node_without_a_copy()
    {
        var pool = "t" + Guid.NewGuid().ToString("N")[..12];
        await using var cluster = await ProcessCluster.StartAsync(postgres, 2, _ => ["--pool", pool]);
        var (a, b) = (cluster.Silos[0], cluster.Silos[1]);
        var courierA = await cluster.OnSiloAsync<IBufferCourierGrain>(a);
        var courierB = await cluster.OnSiloAsync<IBufferCourierGrain>(b);
        var beforeA = await courierA.Pool();
        var beforeB = await courierB.Pool();
        Assert.Equal(pool, beforeA.Pool);
        Assert.NotEqual(beforeA.Slot, beforeB.Slot);

        var sent = await courierA.SendTo(b.SiloAddress, 256 * Mebibyte, seed: 7);
        Assert.Equal(a.SiloAddress, sent.FromSilo);
        Assert.Equal(sent.Sent, sent.Received);

        var fetched = await courierA.FetchFrom(b.SiloAddress, 64 * Mebibyte, seed: 9);
        Assert.Equal(fetched.Sent, fetched.Received);

        var afterA = await courierA.Pool();
        var afterB = await courierB.Pool();
        Assert.Equal(0, afterA.BytesCopied - beforeA.BytesCopied);
        Assert.Equal(0, afterB.BytesCopied - beforeB.BytesCopied);
        Assert.True(afterA.BytesHandedOff - beforeA.BytesHandedOff >= 256L * Mebibyte, $"A handed off {afterA.BytesHandedOff - beforeA.BytesHandedOff} bytes");
        Assert.True(afterB.BytesHandedOff - beforeB.BytesHandedOff >= 64L * Mebibyte, $"B handed off {afterB.BytesHandedOff - beforeB.BytesHandedOff} bytes");

        // Every reference taken for the calls was dropped: only B's courier still holds the buffer it made last.
        Assert.Equal(beforeA.LiveHandles, afterA.LiveHandles);
        Assert.Equal(beforeB.LiveHandles + 1, afterB.LiveHandles);
        Assert.Equal(beforeA.LiveBuffers + 1, afterA.LiveBuffers);
        Assert.Equal(0, afterA.LeakedHandles + afterB.LeakedHandles);
    }

    /// <summary>Between silos told they are on different nodes, the bytes are streamed into the receiver's own pool.</summary>
    [Fact]
    public async Task Buffer_is_streamed_to_a_silo_of_another_node()
    {
        var prefix = "t" + Guid.NewGuid().ToString("N")[..10];
        await using var cluster = await ProcessCluster.StartAsync(postgres, 2, i => ["--node-id", $"node{i}", "--pool", $"{prefix}-{i}"]);
        var (a, b) = (cluster.Silos[0], cluster.Silos[1]);
        var courierA = await cluster.OnSiloAsync<IBufferCourierGrain>(a);
        var courierB = await cluster.OnSiloAsync<IBufferCourierGrain>(b);
        var beforeA = await courierA.Pool();
        var beforeB = await courierB.Pool();
        Assert.NotEqual(beforeA.Pool, beforeB.Pool);

        var sent = await courierA.SendTo(b.SiloAddress, 256 * Mebibyte, seed: 11);
        Assert.Equal(sent.Sent, sent.Received);
        var fetched = await courierA.FetchFrom(b.SiloAddress, 3 * Mebibyte + 17, seed: 13);
        Assert.Equal(fetched.Sent, fetched.Received);

        var afterA = await courierA.Pool();
        var afterB = await courierB.Pool();
        Assert.Equal(256L * Mebibyte + 3 * Mebibyte + 17, afterA.BytesCopied - beforeA.BytesCopied);
        Assert.Equal(256L * Mebibyte + 3 * Mebibyte + 17, afterB.BytesCopied - beforeB.BytesCopied);
        Assert.Equal(0, afterA.BytesHandedOff - beforeA.BytesHandedOff);
        Assert.Equal(beforeA.LiveHandles, afterA.LiveHandles);
        Assert.Equal(0, afterA.LeakedHandles + afterB.LeakedHandles);
    }

    /// <summary>The buffers a silo held when it was killed with SIGKILL go back to the node's pool.</summary>
    [Fact]
    public async Task Buffers_of_a_killed_silo_return_to_the_pool()
    {
        var name = "t" + Guid.NewGuid().ToString("N")[..12];
        await using var cluster = await ProcessCluster.StartAsync(postgres, 2, _ => ["--pool", name]);
        using var pool = SharedBufferPool.Open(name);
        var (survivor, victim) = (cluster.Silos[0], cluster.Silos[1]);
        _ = await (await cluster.OnSiloAsync<IBufferCourierGrain>(survivor)).Pool();
        var before = pool.GetStatistics();

        Assert.Equal(8, await (await cluster.OnSiloAsync<IBufferCourierGrain>(victim)).Hold(8, 16 * Mebibyte));
        var holding = pool.GetStatistics();
        Assert.Equal(before.LiveBuffers + 8, holding.LiveBuffers);
        Assert.True(holding.UsedBytes >= before.UsedBytes + 128L * Mebibyte);

        await victim.KillAsync();
        pool.Recover();
        var after = pool.GetStatistics();
        Assert.Equal(before.LiveBuffers, after.LiveBuffers);
        Assert.Equal(before.UsedBytes, after.UsedBytes);
        Assert.Equal(before.AttachedProcesses - 1, after.AttachedProcesses);
        Assert.True(after.RecoveredBuffers >= holding.RecoveredBuffers + 8);
    }
}
