using System.Runtime.CompilerServices;
using Orleans.LIFL.Dataplane;
using Xunit;

namespace Orleans.LIFL.Native.Tests;

/// <summary>The C# view of the node's shared pool: handles, reference counts, spans over shared memory, the leak counter.</summary>
public sealed class SharedBufferPoolTests : IDisposable
{
    private const int Mebibyte = 1 << 20;
    private readonly string _name = "t" + Guid.NewGuid().ToString("N")[..12];
    private readonly SharedBufferPool _pool;

    public SharedBufferPoolTests()
    {
        _pool = SharedBufferPool.Open(_name, 64 * Mebibyte);
    }

    public void Dispose() => _pool.Dispose();

    /// <summary>A failure of the system (here: the pool's segment name is taken by a directory) names the system's reason, not "Success".</summary>
    [Fact]
    public void A_system_failure_names_the_systems_reason()
    {
        var name = "t" + Guid.NewGuid().ToString("N")[..12];
        var squatter = Directory.CreateDirectory($"/dev/shm/lifl.{name}");
        try
        {
            var error = Assert.Throws<DataplaneException>(() => SharedBufferPool.Open(name, 64 * Mebibyte));
            // The kernel's words for what went wrong (EINVAL or EISDIR here), not what errno happened to hold later.
            Assert.Matches(@"a system call failed .*\((?!Success\))[A-Z][A-Za-z ]+\)\.$", error.Message);
        }
        finally
        {
            squatter.Delete();
        }
    }

    /// <summary>BlockLength is the pool memory a rented buffer really takes, as the native allocator counts it.</summary>
    [Theory]
    [InlineData(1L, 4096L)]
    [InlineData(4096L, 4096L)]
    [InlineData(4097L, 8192L)]
    [InlineData(5_000_000L, 8_388_608L)]
    public void Block_length_is_what_a_buffer_takes_from_the_pool(long length, long block)
    {
        Assert.Equal(block, SharedBufferPool.BlockLength(length));
        var before = _pool.GetStatistics().UsedBytes;
        using var buffer = _pool.Rent(length);
        Assert.Equal(block, _pool.GetStatistics().UsedBytes - before);
    }

    /// <summary>What is written through one handle's span is read through another's: one set of bytes, freed with the last reference.</summary>
    [Fact]
    public void Shared_handles_view_the_same_bytes_and_the_last_dispose_frees_them()
    {
        var buffer = _pool.Rent(10_000);
        Assert.Equal(10_000, buffer.Length);
        buffer.AsSpan<int>().Fill(42);
        var other = buffer.Share();
        Assert.Equal(2, _pool.ReferenceCount(buffer.Descriptor));
        Assert.Equal(2_500, other.AsSpan<int>().Length);
        Assert.True(other.AsSpan<int>().IndexOfAnyExcept(42) < 0);

        buffer.Dispose();
        buffer.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => buffer.Span.Length);
        Assert.Equal(1, _pool.ReferenceCount(other.Descriptor));
        Assert.Equal(1, _pool.GetStatistics().LiveBuffers);

        other.Dispose();
        var stats = _pool.GetStatistics();
        Assert.Equal((0, 0, 0), (stats.LiveBuffers, stats.UsedBytes, stats.LiveHandles));
        var gone = Assert.Throws<DataplaneException>(() => _pool.ReferenceCount(other.Descriptor));
        Assert.Equal(-3, gone.Status); // LIFL_E_STALE
    }

    /// <summary>A Memory view works with APIs that take one, and pinning it gives the shared memory's own address.</summary>
    /// <summary>
    /// Prefaulting a buffer for write makes its pages resident at once (the pool's resident bytes grow by its length)
    /// without changing a byte, and the pages stay with the pool after the buffer is freed.
    /// </summary>
    [Fact]
    public void Prefaulting_makes_a_buffer_resident_and_leaves_its_bytes()
    {
        using var probe = _pool.Rent(4 * Mebibyte);
        var before = _pool.GetStatistics().ResidentBytes;
        probe.Span[..4096].Fill(0x33);
        probe.Prefault(forWrite: true);
        var after = _pool.GetStatistics().ResidentBytes;
        Assert.True(after - before >= 4 * Mebibyte - 4096, $"resident grew by {after - before:N0} bytes for a 4 MiB buffer");
        Assert.True(probe.Span[..4096].IndexOfAnyExcept((byte)0x33) < 0);
        probe.Prefault(forWrite: false);
        probe.Dispose();
        Assert.Equal(after, _pool.GetStatistics().ResidentBytes);
        Assert.Throws<ObjectDisposedException>(() => probe.Prefault(forWrite: false));
    }

    [Fact]
    public async Task Memory_view_is_usable_by_streams_and_pins_in_place()
    {
        using var buffer = _pool.Rent(3 * 4096);
        var source = Enumerable.Range(0, buffer.Length).Select(i => (byte)(i * 7)).ToArray();
        await new MemoryStream(source).ReadExactlyAsync(buffer.AsMemory<byte>(), TestContext.Current.CancellationToken);
        Assert.True(buffer.Span.SequenceEqual(source));

        using var pin = buffer.AsMemory<byte>().Pin();
        unsafe
        {
            Assert.Equal((nint)Unsafe.AsPointer(ref buffer.Span[0]), (nint)pin.Pointer);
        }
    }

    /// <summary>A handle dropped without Dispose is counted as leaked when collected, and its reference is returned.</summary>
    [Fact]
    public void An_undisposed_handle_is_counted_as_leaked_and_released()
    {
        var descriptor = RentAndForget(_pool);
        Assert.Equal(1, _pool.ReferenceCount(descriptor));
        for (var i = 0; i < 10 && _pool.GetStatistics().LeakedHandles == 0; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        var stats = _pool.GetStatistics();
        Assert.Equal(1, stats.LeakedHandles);
        Assert.Equal((0, 0), (stats.LiveHandles, stats.LiveBuffers));
        Assert.Throws<DataplaneException>(() => _pool.ReferenceCount(descriptor));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static BufferDescriptor RentAndForget(SharedBufferPool pool) => pool.Rent(4096).Descriptor;

    /// <summary>Another attachment of the pool (as another process would be) is given a reference and adopts it; the bytes never move.</summary>
    [Fact]
    public void A_buffer_given_to_another_attachment_is_adopted_there()
    {
        using var receiver = SharedBufferPool.Open(_name);
        Assert.NotEqual(_pool.Slot, receiver.Slot);
        using var buffer = _pool.Rent(Mebibyte);
        buffer.Span.Fill(0xAB);

        _pool.Give(buffer.Descriptor, receiver.Slot);
        Assert.True(_pool.TryPost(receiver.Slot, buffer.Descriptor));
        Assert.True(receiver.TryTake(out var posted, TimeSpan.FromSeconds(5)));
        using var adopted = receiver.Adopt(posted);
        Assert.Equal(2, receiver.ReferenceCount(posted));
        Assert.True(adopted.Span.IndexOfAnyExcept((byte)0xAB) < 0);
        Assert.Equal(Mebibyte, _pool.GetStatistics().BytesHandedOff);
        Assert.Equal(0, _pool.GetStatistics().BytesCopied);

        adopted.Dispose();
        Assert.Equal(1, _pool.ReferenceCount(buffer.Descriptor));
        Assert.False(receiver.TryTake(out _, TimeSpan.Zero));
    }

    /// <summary>A consumer waiting on its descriptor queue is woken by an interrupt and returns empty-handed.</summary>
    [Fact]
    public async Task A_waiting_take_is_interrupted()
    {
        var waiting = Task.Run(() => _pool.TryTake(out _, Timeout.InfiniteTimeSpan), TestContext.Current.CancellationToken);
        Assert.False(waiting.IsCompleted);
        while (!waiting.IsCompleted)
        {
            _pool.InterruptTake();
            await Task.WhenAny(waiting, Task.Delay(10, TestContext.Current.CancellationToken));
        }

        Assert.False(await waiting);
    }

    /// <summary>A pool in use is never removed; the last attachment to go takes the pool's segment with it.</summary>
    [Fact]
    public void A_pool_goes_with_its_last_attachment_and_not_before()
    {
        var name = "t" + Guid.NewGuid().ToString("N")[..12];
        var segment = "/dev/shm/lifl." + name;
        var first = SharedBufferPool.Open(name, 8 * Mebibyte);
        using (var second = SharedBufferPool.Open(name))
        {
            first.Dispose();
            Assert.False(SharedBufferPool.RemoveIfUnused(name));
            Assert.True(File.Exists(segment));
            Assert.True(SharedBufferPool.Exists(name));
            using var buffer = second.Rent(4096);
            buffer.Span.Fill(1);
        }

        Assert.False(File.Exists(segment));
        Assert.False(SharedBufferPool.Exists(name));
        Assert.False(SharedBufferPool.RemoveIfUnused(name));
    }

    /// <summary>Bad arguments are refused with errors that name them, and the pool is untouched.</summary>
    [Fact]
    public void Bad_arguments_are_refused_by_name()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _pool.Rent(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => _pool.Rent(SharedBufferPool.MaxBufferLength + 1));
        var full = Assert.Throws<DataplaneException>(() => _pool.Rent(128 * Mebibyte));
        Assert.Contains(_name, full.Message, StringComparison.Ordinal);
        Assert.Contains("134,217,728", full.Message, StringComparison.Ordinal);

        var badName = Assert.Throws<ArgumentException>(() => SharedBufferPool.Open("no/slashes"));
        Assert.Contains("no/slashes", badName.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedBufferPool.Open(_name, 4096));

        var notHeld = Assert.Throws<DataplaneException>(() => _pool.Give(new BufferDescriptor(0, 4096, 0, 1, 0), _pool.Slot));
        Assert.Contains("slot", notHeld.Message, StringComparison.Ordinal);
        Assert.Equal(0, _pool.GetStatistics().LiveBuffers);
    }

    /// <summary>Where the eBPF programs cannot be loaded, opening says why instead of throwing, so a silo can fall back to TCP.</summary>
    [Fact]
    public void Ebpf_that_cannot_be_loaded_says_why()
    {
        var nowhere = Path.Combine(Path.GetTempPath(), "not-a-bpf-filesystem-" + Guid.NewGuid().ToString("N")[..8], "pins");
        Assert.False(EbpfRedirect.TryOpen(nowhere, null, out var redirect, out var error));
        Assert.Null(redirect);
        Assert.False(string.IsNullOrWhiteSpace(error));
        Assert.Contains(Environment.IsPrivilegedProcess ? "BPF" : "", error, StringComparison.OrdinalIgnoreCase);
    }
}
