using Npgsql;

namespace Orleans.LIFL.PostgreSql;

/// <summary>
/// One connection pool per connection string in the process, shared by the providers that use it (membership,
/// directory, storage), so their connections together stay under the pool's limit. Closed with its last lease.
/// </summary>
internal static class SharedDataSource
{
    private static readonly Dictionary<string, (NpgsqlDataSource DataSource, int Leases)> Sources = new(StringComparer.Ordinal);
    private static readonly Lock Gate = new();

    public static Lease Acquire(string connectionString, Func<NpgsqlDataSource> create)
    {
        lock (Gate)
        {
            (NpgsqlDataSource DataSource, int Leases) entry = Sources.TryGetValue(connectionString, out var existing) ? existing : (create(), 0);
            Sources[connectionString] = (entry.DataSource, entry.Leases + 1);
            return new Lease(connectionString, entry.DataSource);
        }
    }

    private static ValueTask Release(string connectionString)
    {
        NpgsqlDataSource? last = null;
        lock (Gate)
        {
            if (Sources.TryGetValue(connectionString, out var entry))
            {
                if (entry.Leases == 1)
                {
                    Sources.Remove(connectionString);
                    last = entry.DataSource;
                }
                else
                {
                    Sources[connectionString] = (entry.DataSource, entry.Leases - 1);
                }
            }
        }

        return last?.DisposeAsync() ?? ValueTask.CompletedTask;
    }

    /// <summary>One provider's use of a shared pool.</summary>
    public sealed class Lease(string connectionString, NpgsqlDataSource dataSource)
    {
        private int _released;

        public NpgsqlDataSource DataSource { get; } = dataSource;

        public ValueTask ReleaseAsync() =>
            Interlocked.Exchange(ref _released, 1) == 0 ? Release(connectionString) : ValueTask.CompletedTask;
    }
}
