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

/// <summary>What every blob storage accepts: the arguments' checks, with messages that name what is wrong.</summary>
public static class BlobArguments
{
    /// <summary>The longest key accepted (PostgreSQL's primary key holds it comfortably).</summary>
    public const int MaxKeyLength = 1000;

    public static void CheckKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length == 0)
        {
            throw new ArgumentException("A blob key must not be empty.", nameof(key));
        }

        if (key.Length > MaxKeyLength)
        {
            throw new ArgumentException($"A blob key is at most {MaxKeyLength} characters; this one has {key.Length}.", nameof(key));
        }
    }

    public static void CheckContent(string key, SharedBuffer content)
    {
        CheckKey(key);
        ArgumentNullException.ThrowIfNull(content);
        if (content.IsDisposed)
        {
            throw new ArgumentException($"The content to store under blob key '{key}' is a disposed buffer.", nameof(content));
        }
    }
}
