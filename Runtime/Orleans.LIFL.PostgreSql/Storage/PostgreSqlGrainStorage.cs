using System.Globalization;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.LIFL.Persistence;

namespace Orleans.LIFL.PostgreSql;

/// <summary>
/// Grain state in PostgreSQL: one row per (service, storage, state name, grain) holding the serialized state and a
/// version that every write increments. The ETag is that version; a write or clear whose ETag is not the stored
/// version changes nothing and throws <see cref="InconsistentStateException"/>. The table is created on first use.
/// </summary>
public sealed class PostgreSqlGrainStorage : IGrainStorage, IAsyncDisposable, IDisposable
{
    private const string Table = "lifl_grain_state";

    private const string SchemaDdl = """
        CREATE TABLE IF NOT EXISTS lifl_grain_state
        (
            service_id text NOT NULL,
            storage_name text NOT NULL,
            state_name text NOT NULL,
            grain_id text NOT NULL,
            payload bytea NOT NULL,
            version integer NOT NULL,
            modified_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_lifl_grain_state PRIMARY KEY (service_id, storage_name, state_name, grain_id)
        );
        """;

    private const string KeyFilter =
        "service_id = @service AND storage_name = @storage AND state_name = @state AND grain_id = @grain";

    private const string ReadSql = "SELECT payload, version FROM lifl_grain_state WHERE " + KeyFilter;

    private const string VersionSql = "SELECT version FROM lifl_grain_state WHERE " + KeyFilter;

    private const string InsertSql = """
        INSERT INTO lifl_grain_state (service_id, storage_name, state_name, grain_id, payload, version)
        VALUES (@service, @storage, @state, @grain, @payload, 1)
        ON CONFLICT (service_id, storage_name, state_name, grain_id) DO NOTHING
        RETURNING version
        """;

    private const string UpdateSql =
        "UPDATE lifl_grain_state SET payload = @payload, version = version + 1, modified_at = now() WHERE "
        + KeyFilter + " AND version = @expected RETURNING version";

    private const string DeleteSql = "DELETE FROM lifl_grain_state WHERE " + KeyFilter + " AND version = @expected RETURNING version";

    private readonly PostgreSqlDatabase _database;
    private readonly string _name;
    private readonly string _serviceId;
    private readonly IStatePayloadCodec _codec;

    /// <param name="name">The storage provider's name (grains ask for it in [PersistentState]).</param>
    /// <param name="connectionString">An Npgsql connection string.</param>
    /// <param name="serviceId">The service whose state this is (ClusterOptions.ServiceId).</param>
    public PostgreSqlGrainStorage(string name, string connectionString, string serviceId, ILogger<PostgreSqlGrainStorage> logger)
        : this(name, connectionString, serviceId, LiflSerializerPayloadCodec.Instance, logger)
    {
    }

    internal PostgreSqlGrainStorage(string name, string connectionString, string serviceId, IStatePayloadCodec codec, ILogger<PostgreSqlGrainStorage> logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceId);
        ArgumentNullException.ThrowIfNull(logger);
        _database = new PostgreSqlDatabase(connectionString, $"grain storage '{name}'", Table, SchemaDdl, logger);
        _name = name;
        _serviceId = serviceId;
        _codec = codec;
    }

    /// <summary>Reads the stored state; a grain with none gets the default state, no ETag and RecordExists false.</summary>
    public async Task ReadStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState)
    {
        CheckArguments(stateName, grainId, grainState);
        var record = await _database.RunAsync("read grain state", Table, async connection =>
        {
            await using var command = WithKey(new NpgsqlCommand(ReadSql, connection), stateName, grainId);
            await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
            return await reader.ReadAsync().ConfigureAwait(false)
                ? new StoredRecord(reader.GetFieldValue<byte[]>(0), reader.GetInt32(1))
                : null;
        }).ConfigureAwait(false);

        if (record is null)
        {
            grainState.State = CreateDefault<TState>();
            grainState.ETag = null;
            grainState.RecordExists = false;
            return;
        }

        grainState.State = Deserialize<TState>(record.Payload, stateName, grainId);
        grainState.ETag = FormatEtag(record.Version);
        grainState.RecordExists = true;
    }

    /// <summary>
    /// Stores the state: inserts when the ETag is null, otherwise replaces the record whose version is the ETag.
    /// On success the ETag is the new version.
    /// </summary>
    public async Task WriteStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState)
    {
        CheckArguments(stateName, grainId, grainState);
        var payload = _codec.Serialize(grainState.State);
        var etag = grainState.ETag;
        var expected = ParseEtag(etag);
        var (written, version) = await _database.RunAsync("write grain state", Table, async connection =>
        {
            var command = etag is null
                ? WithKey(new NpgsqlCommand(InsertSql, connection), stateName, grainId).With("payload", payload)
                : WithKey(new NpgsqlCommand(UpdateSql, connection), stateName, grainId).With("payload", payload).With("expected", expected ?? -1);
            await using (command)
            {
                if (await command.ExecuteScalarAsync().ConfigureAwait(false) is int newVersion)
                {
                    return (true, (int?)newVersion);
                }
            }

            return (false, await ReadVersionAsync(connection, stateName, grainId).ConfigureAwait(false));
        }).ConfigureAwait(false);

        if (!written)
        {
            throw Conflict("write", stateName, grainId, version, etag);
        }

        grainState.ETag = FormatEtag(version!.Value);
        grainState.RecordExists = true;
    }

    /// <summary>Deletes the record whose version is the ETag (with a null ETag: succeeds only if there is none).</summary>
    public async Task ClearStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState)
    {
        CheckArguments(stateName, grainId, grainState);
        var etag = grainState.ETag;
        var expected = ParseEtag(etag);
        var (cleared, stored) = await _database.RunAsync("clear grain state", Table, async connection =>
        {
            if (etag is not null)
            {
                await using var command = WithKey(new NpgsqlCommand(DeleteSql, connection), stateName, grainId).With("expected", expected ?? -1);
                if (await command.ExecuteScalarAsync().ConfigureAwait(false) is int)
                {
                    return (true, (int?)null);
                }
            }

            var current = await ReadVersionAsync(connection, stateName, grainId).ConfigureAwait(false);
            return (etag is null && current is null, current);
        }).ConfigureAwait(false);

        if (!cleared)
        {
            throw Conflict("clear", stateName, grainId, stored, etag);
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
    }

    public ValueTask DisposeAsync() => _database.DisposeAsync();

    public void Dispose() => _database.Dispose();

    /// <summary>What a grain without a stored record starts with, as the in-memory provider does.</summary>
    internal static TState CreateDefault<TState>()
    {
        if (typeof(TState).IsValueType || typeof(TState) == typeof(string))
        {
            return default!;
        }

        return typeof(TState).GetConstructor(Type.EmptyTypes) is not null ? Activator.CreateInstance<TState>() : default!;
    }

    private async Task<int?> ReadVersionAsync(NpgsqlConnection connection, string stateName, GrainId grainId)
    {
        await using var command = WithKey(new NpgsqlCommand(VersionSql, connection), stateName, grainId);
        return await command.ExecuteScalarAsync().ConfigureAwait(false) as int?;
    }

    private NpgsqlCommand WithKey(NpgsqlCommand command, string stateName, GrainId grainId) =>
        command.With("service", _serviceId)
            .With("storage", _name)
            .With("state", stateName)
            .With("grain", grainId.ToString());

    private TState Deserialize<TState>(byte[] payload, string stateName, GrainId grainId)
    {
        try
        {
            return _codec.Deserialize<TState>(payload);
        }
        catch (Exception error) when (error is not OutOfMemoryException)
        {
            throw new LiflException(
                $"State '{stateName}' of {grainId} in storage '{_name}' cannot be read as {typeof(TState).Name}: {error.Message}", error);
        }
    }

    private static void CheckArguments<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(stateName);
        ArgumentNullException.ThrowIfNull(grainState);
        if (grainId.IsDefault)
        {
            throw new ArgumentException("A grain id is required.", nameof(grainId));
        }
    }

    /// <summary>An ETag this provider did not issue matches no stored version.</summary>
    private static int? ParseEtag(string? etag) =>
        int.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : null;

    private static string FormatEtag(int version) => version.ToString(CultureInfo.InvariantCulture);

    private InconsistentStateException Conflict(string operation, string stateName, GrainId grainId, int? stored, string? expected)
    {
        var storedEtag = stored is null ? null : FormatEtag(stored.Value);
        return new InconsistentStateException(
            $"Cannot {operation} state '{stateName}' of {grainId} in storage '{_name}': it was changed since this activation read it (stored ETag {storedEtag ?? "none"}, expected {expected ?? "none"}).",
            storedEtag,
            expected);
    }

    private sealed record StoredRecord(byte[] Payload, int Version);
}
