using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Runtime.Storage;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>The in-memory blob storage: buffers of the silo's pool kept by reference, released when dropped.</summary>
public sealed class BlobStorageTests : IDisposable
{
    private readonly string _name = "t" + Guid.NewGuid().ToString("N")[..12];
    private readonly string _otherName = "t" + Guid.NewGuid().ToString("N")[..12];
    private readonly SharedBufferPool _pool;
    private readonly SharedBufferPool _other;
    private readonly MemoryBlobBackend _backend = new();
    private readonly MemoryBlobStorage _storage;

    public BlobStorageTests()
    {
        _pool = SharedBufferPool.Acquire(_name, 64L << 20);
        _other = SharedBufferPool.Acquire(_otherName, 64L << 20);
        _storage = new MemoryBlobStorage(_backend, () => _pool);
    }

    public void Dispose()
    {
        _backend.Dispose();
        _pool.Dispose();
        _other.Dispose();
    }

    /// <summary>A buffer of the silo's pool is kept as another reference to the same bytes, and read back as one.</summary>
    [Fact]
    public async Task A_buffer_of_the_pool_is_kept_and_read_without_a_copy()
    {
        using var model = Filled(_pool, 1000, seed: 1);
        await _storage.WriteAsync("m/1", model, TestContext.Current.CancellationToken);
        Assert.Equal(2, _pool.ReferenceCount(model.Descriptor));

        using var read = await _storage.ReadAsync("m/1", _pool, TestContext.Current.CancellationToken);
        Assert.NotNull(read);
        Assert.Equal(model.Descriptor.Offset, read.Descriptor.Offset);
        Assert.Equal(3, _pool.ReferenceCount(model.Descriptor));
    }

    /// <summary>A buffer of another pool is copied in; a read into another pool copies out; the bytes are the same.</summary>
    [Fact]
    public async Task Buffers_of_other_pools_are_copied()
    {
        using var foreign = Filled(_other, 777, seed: 2);
        await _storage.WriteAsync("m/2", foreign, TestContext.Current.CancellationToken);
        Assert.Equal(1, _other.ReferenceCount(foreign.Descriptor));

        using var local = await _storage.ReadAsync("m/2", _pool, TestContext.Current.CancellationToken);
        using var back = await _storage.ReadAsync("m/2", _other, TestContext.Current.CancellationToken);
        Assert.Same(_pool, local!.Pool);
        Assert.Same(_other, back!.Pool);
        Assert.NotEqual(foreign.Descriptor.Offset, back.Descriptor.Offset);
        Assert.True(foreign.Span.SequenceEqual(local.Span));
        Assert.True(foreign.Span.SequenceEqual(back.Span));
    }

    /// <summary>Overwriting, deleting and shutting the store down release the references it held.</summary>
    [Fact]
    public async Task Dropped_blobs_release_their_buffers()
    {
        using var first = Filled(_pool, 100, seed: 3);
        using var second = Filled(_pool, 100, seed: 4);
        using var third = Filled(_pool, 100, seed: 5);
        var ct = TestContext.Current.CancellationToken;
        await _storage.WriteAsync("k", first, ct);
        await _storage.WriteAsync("k", second, ct);
        Assert.Equal((1, 2), (_pool.ReferenceCount(first.Descriptor), _pool.ReferenceCount(second.Descriptor)));

        Assert.True(await _storage.DeleteAsync("k", ct));
        Assert.False(await _storage.DeleteAsync("k", ct));
        Assert.Null(await _storage.ReadAsync("k", _pool, ct));
        Assert.Equal(1, _pool.ReferenceCount(second.Descriptor));

        await _storage.WriteAsync("other", third, ct);
        _backend.Dispose();
        Assert.Equal(1, _pool.ReferenceCount(third.Descriptor));
        Assert.Throws<ObjectDisposedException>(() => _backend.Write("again", third, _pool));
    }

    /// <summary>A blob outlives the silo lease of its pool: the store's own lease keeps the bytes mapped.</summary>
    [Fact]
    public async Task A_kept_blob_keeps_its_pool_mapped()
    {
        var silo = _pool.AddLease();
        var storage = new MemoryBlobStorage(_backend, () => silo);
        using (var model = Filled(silo, 4096, seed: 6))
        {
            await storage.WriteAsync("kept", model, TestContext.Current.CancellationToken);
        }

        silo.Dispose();
        using var read = await _storage.ReadAsync("kept", _pool, TestContext.Current.CancellationToken);
        Assert.Equal(Values(4096, seed: 6), read!.AsSpan<float>().ToArray());
    }

    /// <summary>Bad keys and a disposed buffer are refused by name.</summary>
    [Fact]
    public async Task Bad_arguments_are_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        var disposed = Filled(_pool, 10, seed: 7);
        disposed.Dispose();
        await Assert.ThrowsAsync<ArgumentException>("key", () => _storage.WriteAsync("", disposed, ct));
        var tooLong = await Assert.ThrowsAsync<ArgumentException>("key", () => _storage.ReadAsync(new string('k', 1001), _pool, ct));
        Assert.Contains("1001", tooLong.Message, StringComparison.Ordinal);
        var error = await Assert.ThrowsAsync<ArgumentException>("content", () => _storage.WriteAsync("k", disposed, ct));
        Assert.Contains("blob key 'k' is a disposed buffer", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, _backend.Count);
    }

    /// <summary>A silo's blob storage is the in-memory one unless configured; every silo of a process shares its blobs.</summary>
    [Fact]
    public async Task Silos_of_a_process_share_the_in_memory_blobs()
    {
        await using var cluster = await Infrastructure.TestClusters.StartAsync(silos: 2);
        var first = cluster.Silos[0].Services;
        var second = cluster.Silos[1].Services;
        var pool = first.GetRequiredService<SharedBufferPool>();
        using var model = Filled(pool, 64, seed: 8);
        await first.GetRequiredService<IBlobStorage>().WriteAsync("shared", model, TestContext.Current.CancellationToken);
        using var read = await second.GetRequiredService<IBlobStorage>().ReadAsync("shared", pool, TestContext.Current.CancellationToken);
        Assert.IsType<MemoryBlobStorage>(second.GetRequiredService<IBlobStorage>());
        Assert.Equal(Values(64, seed: 8), read!.AsSpan<float>().ToArray());
    }

    private static SharedBuffer Filled(SharedBufferPool pool, int floats, int seed)
    {
        var buffer = pool.Rent((long)floats * sizeof(float));
        Values(floats, seed).CopyTo(buffer.AsSpan<float>());
        return buffer;
    }

    private static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => (float)random.NextDouble())];
    }
}
