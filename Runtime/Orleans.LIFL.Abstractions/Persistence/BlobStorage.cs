using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Persistence;

/// <summary>
/// Large immutable byte payloads (an FL job's published models) kept by key beside grain state, moved between the
/// node's shared pool and the store without a managed copy of the whole payload: the in-memory store keeps a
/// reference to the caller's pool buffer, PostgreSQL streams the bytes from and into pool buffers. Registered by
/// the silo (in memory by default; <c>AddPostgreSqlBlobStorage</c> in a cluster); grains take it in their constructor.
/// </summary>
public interface IBlobStorage
{
    /// <summary>
    /// Stores <paramref name="content"/> under <paramref name="key"/>, replacing what was stored there. The caller keeps
    /// its handle (and disposes it); the bytes must not change afterwards, as the store may keep a reference to them.
    /// </summary>
    Task WriteAsync(string key, SharedBuffer content, CancellationToken cancellationToken = default);

    /// <summary>
    /// What is stored under <paramref name="key"/>, in a buffer of <paramref name="pool"/> whose handle is the caller's
    /// to dispose; null when nothing is stored there. The bytes are not to be written.
    /// </summary>
    Task<SharedBuffer?> ReadAsync(string key, SharedBufferPool pool, CancellationToken cancellationToken = default);

    /// <summary>Removes what is stored under <paramref name="key"/>; false when nothing was.</summary>
    Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default);
}
