using Orleans.LIFL.Dataplane;
using Orleans.LIFL.TestGrains;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;

namespace Orleans.LIFL.Cluster.Tests;

/// <summary>
/// The dataplane between real silo processes: buffers by descriptor on one node, streamed between nodes, reclaimed
/// after kill -9; eBPF redirection in effect (by the kernel's counters) and the fallback when it cannot be loaded.
/// </summary>
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
        Assert.Equal(b.SiloAddress, sent.Seen.Silo);
        Assert.Equal(sent.Sent, sent.Seen.Checksum);
        // The very bytes A wrote: same pool, same place. While B held them: A's handle, the call's copy of its argument
        // (kept by the request until it is answered) and B's own.
        Assert.Equal((pool, sent.SentOffset), (sent.Seen.Pool, sent.Seen.Offset));
        Assert.Equal(3, sent.Seen.ReferencesWhileHeld);

        var fetched = await courierA.FetchFrom(b.SiloAddress, 64 * Mebibyte, seed: 9);
        Assert.Equal(fetched.Sent, fetched.Seen.Checksum);
        Assert.Equal(pool, fetched.Seen.Pool);

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
        Assert.Equal(sent.Sent, sent.Seen.Checksum);
        Assert.Equal(beforeB.Pool, sent.Seen.Pool);
        Assert.Equal(1, sent.Seen.ReferencesWhileHeld); // B's pool: only B's copy
        var fetched = await courierA.FetchFrom(b.SiloAddress, 3 * Mebibyte + 17, seed: 13);
        Assert.Equal(fetched.Sent, fetched.Seen.Checksum);
        Assert.Equal(beforeA.Pool, fetched.Seen.Pool);

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

    /// <summary>
    /// Between two silos of a node, the sk_msg program redirects the silos' messages: the in-kernel counter and the
    /// kernel's own run count of the program grow with the calls. (Loading needs root: without it the silos must
    /// say so, and this test checks that instead.)
    /// </summary>
    [Fact]
    public async Task Ebpf_redirection_carries_the_messages_between_silos_of_a_node()
    {
        await using var cluster = await ProcessCluster.StartAsync(postgres, 2, _ => ["--pool", "t" + Guid.NewGuid().ToString("N")[..12]]);
        var (a, b) = (cluster.Silos[0], cluster.Silos[1]);
        var courierA = await cluster.OnSiloAsync<IBufferCourierGrain>(a);
        var courierB = await cluster.OnSiloAsync<IBufferCourierGrain>(b);
        var before = await courierA.Dataplane();
        if (!Environment.IsPrivilegedProcess)
        {
            Assert.False(before.EbpfActive);
            Assert.Contains("eBPF", before.EbpfUnavailableReason ?? "", StringComparison.OrdinalIgnoreCase);
            return;
        }

        Assert.True(before.EbpfActive, before.EbpfUnavailableReason);
        Assert.True((await courierB.Dataplane()).EbpfActive);
        const int Calls = 200;
        for (var i = 0; i < Calls; i++)
        {
            var sent = await courierA.SendTo(b.SiloAddress, 4096, seed: i);
            Assert.Equal(sent.Sent, sent.Seen.Checksum);
        }

        var after = await courierA.Dataplane();
        // Each call is at least a request A -> B and a response B -> A on the silo-to-silo connection.
        Assert.True(after.MessagesRedirected - before.MessagesRedirected >= 2 * Calls,
            $"{after.MessagesRedirected - before.MessagesRedirected} messages redirected for {Calls} calls");
        Assert.True(after.MessageProgramRuns - before.MessageProgramRuns >= 2 * Calls,
            $"the kernel ran the sk_msg program {after.MessageProgramRuns - before.MessageProgramRuns} times for {Calls} calls");
    }

    /// <summary>
    /// When the eBPF programs cannot be loaded (here: a pin directory outside any BPF filesystem), each silo says so
    /// once in its log, reports why, and its links work over plain loopback TCP, buffers still crossing by descriptor.
    /// </summary>
    [Fact]
    public async Task Silos_fall_back_to_tcp_when_ebpf_cannot_be_loaded()
    {
        var nowhere = Path.Combine(Path.GetTempPath(), "lifl-not-bpffs-" + Guid.NewGuid().ToString("N")[..8]);
        await using var cluster = await ProcessCluster.StartAsync(
            postgres, 2, _ => ["--pool", "t" + Guid.NewGuid().ToString("N")[..12]],
            new Dictionary<string, string> { ["Lifl__Dataplane__BpfPinDirectory"] = nowhere });
        var (a, b) = (cluster.Silos[0], cluster.Silos[1]);
        var courierA = await cluster.OnSiloAsync<IBufferCourierGrain>(a);
        var report = await courierA.Dataplane();
        Assert.False(report.EbpfActive);
        Assert.NotNull(report.EbpfUnavailableReason);

        for (var i = 0; i < 20; i++)
        {
            var sent = await courierA.SendTo(b.SiloAddress, Mebibyte, seed: i);
            Assert.Equal(sent.Sent, sent.Seen.Checksum);
            Assert.Equal(sent.SentOffset, sent.Seen.Offset);
        }

        foreach (var silo in cluster.Silos)
        {
            var said = silo.RecentOutput.Split('\n').Count(line => line.Contains("eBPF redirection is unavailable", StringComparison.Ordinal));
            Assert.Equal(1, said);
        }
    }
}
