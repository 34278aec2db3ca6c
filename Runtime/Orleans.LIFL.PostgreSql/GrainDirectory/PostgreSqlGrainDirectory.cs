using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.LIFL.Runtime.GrainDirectory;

namespace Orleans.LIFL.PostgreSql;

/// <summary>
/// The grain directory in PostgreSQL: one row per registered grain of the cluster, keyed by (cluster, grain), so
/// the primary key itself keeps every grain to at most one registered activation whichever processes race.
/// The table is created on first use. Registrations and unregistrations made at the same time go to the server together,
/// one statement for all (<see cref="StatementBatcher{TRequest, TResult}"/>), as do lookups; a lookup of a grain made
/// while one of it is in flight takes its answer instead of querying again.
/// </summary>
public sealed class PostgreSqlGrainDirectory : IGrainDirectory, IAsyncDisposable, IDisposable
{
    private const string Table = "lifl_grain_directory";
    private const int MaxClusterIdLength = 150;

    /// <summary>How often <see cref="Register"/> starts over when the entry it looked at changed under it.</summary>
    private const int MaxRegisterAttempts = 64;

    private const string SchemaDdl = """
        CREATE TABLE IF NOT EXISTS lifl_grain_directory
        (
            cluster_id varchar(150) NOT NULL,
            grain_id text NOT NULL,
            silo text NOT NULL,
            activation_id bigint NOT NULL,
            registered_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_lifl_grain_directory PRIMARY KEY (cluster_id, grain_id)
        );
        CREATE INDEX IF NOT EXISTS ix_lifl_grain_directory_silo ON lifl_grain_directory (cluster_id, silo);
        """;

    /// <summary>Inserts the entries whose grains have none (the first of a grain in the batch wins); returns the inserted ones.</summary>
    private const string InsertSql = """
        INSERT INTO lifl_grain_directory (cluster_id, grain_id, silo, activation_id)
        SELECT @cluster, u.grain, u.silo, u.activation FROM unnest(@grains, @silos, @activations) WITH ORDINALITY AS u(grain, silo, activation, n)
        ORDER BY u.n
        ON CONFLICT (cluster_id, grain_id) DO NOTHING
        RETURNING grain_id, silo, activation_id
        """;

    private const string LookupSql = """
        SELECT grain_id, silo, activation_id FROM lifl_grain_directory WHERE cluster_id = @cluster AND grain_id = ANY(@grains)
        """;

    private const string ReplaceSql = """
        UPDATE lifl_grain_directory SET silo = @silo, activation_id = @activation, registered_at = now()
        WHERE cluster_id = @cluster AND grain_id = @grain AND silo = @oldSilo AND activation_id = @oldActivation
        RETURNING silo
        """;

    private const string UnregisterSql = """
        DELETE FROM lifl_grain_directory AS d
        USING unnest(@grains, @silos, @activations) AS u(grain, silo, activation)
        WHERE d.cluster_id = @cluster AND d.grain_id = u.grain AND d.silo = u.silo AND d.activation_id = u.activation
        """;

    private const string UnregisterSilosSql = """
        DELETE FROM lifl_grain_directory WHERE cluster_id = @cluster AND silo = ANY(@silos)
        """;

    private readonly PostgreSqlDatabase _database;
    private readonly string _clusterId;
    private readonly StatementBatcher<GrainAddress, bool> _inserts;
    private readonly StatementBatcher<GrainAddress, bool> _deletes;
    private readonly StatementBatcher<GrainId, GrainAddress?> _queries;

    /// <param name="connectionString">An Npgsql connection string.</param>
    /// <param name="clusterId">The cluster whose grains this directory holds (at most 150 characters).</param>
    public PostgreSqlGrainDirectory(string connectionString, string clusterId, ILogger<PostgreSqlGrainDirectory> logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterId);
        ArgumentNullException.ThrowIfNull(logger);
        if (clusterId.Length > MaxClusterIdLength)
        {
            throw new ArgumentException($"The cluster id '{clusterId}' is longer than the {MaxClusterIdLength} characters of {Table}.cluster_id.", nameof(clusterId));
        }

        _database = new PostgreSqlDatabase(connectionString, "grain directory", Table, SchemaDdl, logger);
        _clusterId = clusterId;
        _inserts = new StatementBatcher<GrainAddress, bool>(InsertAsync);
        _deletes = new StatementBatcher<GrainAddress, bool>(DeleteAsync);
        _queries = new StatementBatcher<GrainId, GrainAddress?>(QueryAsync, shareEqual: true);
    }

    /// <summary>Statements sent to register and unregister activations (those made at the same time share one).</summary>
    public long WriteStatements => _inserts.Statements + _deletes.Statements;

    /// <summary>
    /// Queries sent to look grains up (lookups of a grain made while one is in flight share it; lookups of other grains
    /// made meanwhile go together in the next).
    /// </summary>
    public long LookupQueries => _queries.Statements;

    /// <summary>
    /// Registers <paramref name="address"/> if the grain has no entry, or if its entry names an activation on a silo
    /// <paramref name="isSiloDead"/> says is gone (replaced only if the entry is still that one); otherwise returns the
    /// registered activation.
    /// </summary>
    public async ValueTask<GrainAddress> Register(GrainAddress address, Func<SiloAddress, bool> isSiloDead)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(isSiloDead);
        var grain = address.GrainId.ToString();
        var silo = address.Silo.ToString();
        for (var attempt = 0; attempt < MaxRegisterAttempts; attempt++)
        {
            if (await _inserts.RunAsync(address).ConfigureAwait(false))
            {
                return address;
            }

            var current = await Lookup(address.GrainId).ConfigureAwait(false);
            if (current is null)
            {
                continue; // unregistered since the insert: try again
            }

            if (current.Matches(address) || !isSiloDead(current.Silo))
            {
                return current;
            }

            var replaced = await _database.RunAsync("replace a dead silo's grain activation", Table, async connection =>
            {
                await using var command = new NpgsqlCommand(ReplaceSql, connection)
                    .With("cluster", _clusterId)
                    .With("grain", grain)
                    .With("silo", silo)
                    .With("activation", address.ActivationId.Value)
                    .With("oldSilo", current.Silo.ToString())
                    .With("oldActivation", current.ActivationId.Value);
                return await command.ExecuteScalarAsync().ConfigureAwait(false) is not null;
            }).ConfigureAwait(false);
            if (replaced)
            {
                return address;
            }

            // Another registration replaced or removed the dead entry first: look again.
        }

        throw new InvalidOperationException(
            $"Could not register {address} in the grain directory of cluster '{_clusterId}': its entry kept changing under {MaxRegisterAttempts} attempts.");
    }

    public async ValueTask<GrainAddress?> Lookup(GrainId grainId)
    {
        if (grainId.IsDefault)
        {
            throw new ArgumentException("A grain id is required.", nameof(grainId));
        }

        // A burst of first calls to one grain (many callers, a cold cache) asks the server once. A lookup that joins one
        // already out may miss a registration made meanwhile, as a lookup just before it would: callers that find no
        // entry register, and registering returns the entry that won.
        return await _queries.RunAsync(grainId).ConfigureAwait(false);
    }

    /// <summary>Looks a batch of grains up; the entry of each, or null.</summary>
    private Task<GrainAddress?[]> QueryAsync(IReadOnlyList<GrainId> batch) =>
        _database.RunAsync(batch.Count == 1 ? "look up a grain activation" : $"look up {batch.Count} grain activations", Table, async connection =>
        {
            await using var command = new NpgsqlCommand(LookupSql, connection)
                .With("cluster", _clusterId)
                .With("grains", batch.Select(g => g.ToString()).ToArray());
            var found = new Dictionary<string, (string Silo, long Activation)>();
            await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
            {
                while (await reader.ReadAsync().ConfigureAwait(false))
                {
                    found[reader.GetString(0)] = (reader.GetString(1), reader.GetInt64(2));
                }
            }

            return batch
                .Select(g => found.TryGetValue(g.ToString(), out var entry)
                    ? new GrainAddress(g, SiloAddress.Parse(entry.Silo), new ActivationId(entry.Activation))
                    : null)
                .ToArray();
        });

    /// <summary>Removes the grain's entry only if it still names this silo and activation.</summary>
    public async ValueTask Unregister(GrainAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        await _deletes.RunAsync(address).ConfigureAwait(false);
    }

    /// <summary>Removes every entry of the given silos, in one statement.</summary>
    public async ValueTask UnregisterSilos(IReadOnlyCollection<SiloAddress> silos)
    {
        ArgumentNullException.ThrowIfNull(silos);
        if (silos.Count == 0)
        {
            return;
        }

        var names = silos.Select(s => s.ToString()).ToArray();
        await _database.RunAsync("unregister the activations of dead silos", Table, async connection =>
        {
            await using var command = new NpgsqlCommand(UnregisterSilosSql, connection)
                .With("cluster", _clusterId)
                .With("silos", names);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    /// <summary>Inserts a batch of entries; whether each was inserted.</summary>
    private Task<bool[]> InsertAsync(IReadOnlyList<GrainAddress> batch) =>
        _database.RunAsync(batch.Count == 1 ? "register a grain activation" : $"register {batch.Count} grain activations", Table, async connection =>
        {
            await using var command = WithEntries(new NpgsqlCommand(InsertSql, connection), batch);
            var inserted = new HashSet<(string Grain, string Silo, long Activation)>();
            await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
            {
                while (await reader.ReadAsync().ConfigureAwait(false))
                {
                    inserted.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2)));
                }
            }

            return batch.Select(a => inserted.Contains((a.GrainId.ToString(), a.Silo.ToString(), a.ActivationId.Value))).ToArray();
        });

    private Task<bool[]> DeleteAsync(IReadOnlyList<GrainAddress> batch) =>
        _database.RunAsync(batch.Count == 1 ? "unregister a grain activation" : $"unregister {batch.Count} grain activations", Table, async connection =>
        {
            await using var command = WithEntries(new NpgsqlCommand(UnregisterSql, connection), batch);
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            return new bool[batch.Count];
        });

    private NpgsqlCommand WithEntries(NpgsqlCommand command, IReadOnlyList<GrainAddress> batch) =>
        command
            .With("cluster", _clusterId)
            .With("grains", batch.Select(a => a.GrainId.ToString()).ToArray())
            .With("silos", batch.Select(a => a.Silo.ToString()).ToArray())
            .With("activations", batch.Select(a => a.ActivationId.Value).ToArray());

    public ValueTask DisposeAsync() => _database.DisposeAsync();

    public void Dispose() => _database.Dispose();
}
