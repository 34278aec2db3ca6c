using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Persistence;

namespace Orleans.LIFL.Runtime.Storage;

/// <summary>
/// Blobs kept in memory by the silos and clients of one process (lost when it exits), as references to buffers of
/// the node's shared pool: storing a buffer of the pool the store serves takes another reference to the same bytes,
/// no copy. Each kept buffer holds a lease on its pool, so a silo stopping never unmaps bytes the store still holds.
/// </summary>
internal sealed class MemoryBlobBackend : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>Blobs held now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>
    /// Keeps <paramref name="content"/> under <paramref name="key"/>: another reference when it is a buffer of
    /// <paramref name="pool"/>, else a copy into <paramref name="pool"/>. What was stored there is released.
    /// </summary>
    public void Write(string key, SharedBuffer content, SharedBufferPool pool)
    {
        var entry = Entry.Keep(content, pool);
        Entry? replaced;
        lock (_lock)
        {
            if (_disposed)
            {
                entry.Dispose();
                throw new ObjectDisposedException(nameof(MemoryBlobBackend), "The process's in-memory blob storage was shut down.");
            }

            _entries.Remove(key, out replaced);
            _entries[key] = entry;
        }

        replaced?.Dispose();
    }

    /// <summary>A handle on what is stored under <paramref name="key"/> in a buffer of <paramref name="pool"/> (shared when it is one already).</summary>
    public SharedBuffer? Read(string key, SharedBufferPool pool)
    {
        lock (_lock)
        {
            // Under the lock: a concurrent write or delete cannot release the buffer between the lookup and the new reference.
            return _entries.TryGetValue(key, out var entry) ? entry.HandleIn(pool) : null;
        }
    }

    public bool Delete(string key)
    {
        Entry? removed;
        lock (_lock)
        {
            _entries.Remove(key, out removed);
        }

        removed?.Dispose();
        return removed is not null;
    }

    public void Dispose()
    {
        List<Entry> entries;
        lock (_lock)
        {
            _disposed = true;
            entries = [.. _entries.Values];
            _entries.Clear();
        }

        entries.ForEach(e => e.Dispose());
    }

    /// <summary>One kept buffer and the lease on its pool that keeps the pool mapped while the buffer is kept.</summary>
    private sealed class Entry(SharedBuffer buffer, SharedBufferPool lease) : IDisposable
    {
        public static Entry Keep(SharedBuffer content, SharedBufferPool pool)
        {
            var lease = pool.AddLease();
            try
            {
                return new Entry(Handle(content, pool), lease);
            }
            catch
            {
                lease.Dispose();
                throw;
            }
        }

        public SharedBuffer HandleIn(SharedBufferPool pool) => Handle(buffer, pool);

        public void Dispose()
        {
            buffer.Dispose();
            lease.Dispose();
        }

        /// <summary>Another reference to <paramref name="source"/> when it is in <paramref name="pool"/>, else a copy there.</summary>
        private static SharedBuffer Handle(SharedBuffer source, SharedBufferPool pool)
        {
            if (ReferenceEquals(source.Pool, pool))
            {
                return source.Share();
            }

            var copy = pool.Rent(source.Length);
            source.Span.CopyTo(copy.Span);
            return copy;
        }
    }
}

/// <summary>
/// A silo's view of the process's <see cref="MemoryBlobBackend"/>: buffers of the silo's pool are kept and read
/// back by reference. The embedded default; a cluster whose grain state lives in PostgreSQL keeps its blobs there.
/// </summary>
internal sealed class MemoryBlobStorage(MemoryBlobBackend backend, Func<SharedBufferPool> siloPool) : IBlobStorage
{
    public Task WriteAsync(string key, SharedBuffer content, CancellationToken cancellationToken = default)
    {
        BlobArguments.CheckContent(key, content);
        cancellationToken.ThrowIfCancellationRequested();
        backend.Write(key, content, siloPool());
        return Task.CompletedTask;
    }

    public Task<SharedBuffer?> ReadAsync(string key, SharedBufferPool pool, CancellationToken cancellationToken = default)
    {
        BlobArguments.CheckKey(key);
        ArgumentNullException.ThrowIfNull(pool);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(backend.Read(key, pool));
    }

    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        BlobArguments.CheckKey(key);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(backend.Delete(key));
    }
}
