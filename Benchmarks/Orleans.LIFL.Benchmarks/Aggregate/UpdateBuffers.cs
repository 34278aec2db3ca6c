using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Benchmarks.Aggregate;

/// <summary>
/// A sum and a set of updates of one model size in a shared-memory pool of their own, as an aggregator holds them;
/// every page is written when they are allocated, so no timed pass takes a page fault.
/// </summary>
internal sealed class UpdateBuffers : IDisposable
{
    private readonly SharedBufferPool _pool;
    private readonly SharedBuffer _sum;
    private readonly SharedBuffer[] _updates;
    private int _next;

    private UpdateBuffers(SharedBufferPool pool, SharedBuffer sum, SharedBuffer[] updates, int length)
    {
        _pool = pool;
        _sum = sum;
        _updates = updates;
        Length = length;
    }

    /// <summary>The pool's name (its segment is /dev/shm/lifl.NAME).</summary>
    public string PoolName => _pool.Name;

    /// <summary>Floats in the sum and in each update.</summary>
    public int Length { get; }

    public int Updates => _updates.Length;

    public Span<float> Sum => _sum.AsSpan<float>()[..Length];

    /// <summary>A zero sum and <paramref name="updates"/> updates of values in [-1, 1), in a new pool with a unique name.</summary>
    public static UpdateBuffers Allocate(int length, int updates, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(updates, 1);
        var bytes = (long)length * sizeof(float);
        var pool = SharedBufferPool.Open($"bench-aggregate-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var rented = new List<SharedBuffer>(updates + 1);
        try
        {
            rented.Add(pool.Rent(bytes));
            rented[0].AsSpan<float>()[..length].Clear();
            var random = new Random(seed);
            for (var i = 0; i < updates; i++)
            {
                rented.Add(pool.Rent(bytes));
                var values = rented[^1].AsSpan<float>()[..length];
                for (var j = 0; j < values.Length; j++)
                {
                    values[j] = (random.NextSingle() * 2) - 1;
                }
            }

            return new UpdateBuffers(pool, rented[0], [.. rented.Skip(1)], length);
        }
        catch
        {
            rented.ForEach(b => b.Dispose());
            pool.Dispose();
            throw;
        }
    }

    /// <summary>The next update in turn: the previous <see cref="Updates"/> − 1 calls returned the others.</summary>
    public ReadOnlySpan<float> NextUpdate()
    {
        var update = _updates[_next];
        _next = (_next + 1) % _updates.Length;
        return update.AsSpan<float>()[..Length];
    }

    /// <summary>The next update in turn, as memory (for the kernel that folds several at once).</summary>
    public ReadOnlyMemory<float> NextUpdateMemory()
    {
        var update = _updates[_next];
        _next = (_next + 1) % _updates.Length;
        return update.AsMemory<float>()[..Length];
    }

    public void Dispose()
    {
        foreach (var update in _updates)
        {
            update.Dispose();
        }

        _sum.Dispose();
        _pool.Dispose();
    }
}
