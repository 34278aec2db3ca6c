using System.Data;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Persistence;

namespace Orleans.LIFL.PostgreSql;

/// <summary>
/// Large immutable payloads in PostgreSQL: one row per (service, key) holding the bytes and their length. The bytes
/// are streamed between the connection's socket buffers and the node's shared pool, never held whole in a managed
/// array. The table is created on first use.
/// </summary>
/// <remarks>
/// Npgsql 10 passes a <see cref="ReadOnlyMemory{T}"/> bytea parameter through <c>ReadOnlyMemoryByteaConverter</c>:
/// its size is the memory's length and <c>PgWriter.WriteBytesAsync</c> copies it slice by slice into the connection's
/// write buffer (8 KiB by default), flushing each full buffer to the socket; no array of the value's size is made (a
/// <see cref="Stream"/> parameter, by contrast, is first copied into a MemoryStream). Reading, the column stream of a
/// <see cref="CommandBehavior.SequentialAccess"/> reader hands out what is left in the read buffer, then reads from
/// the socket straight into the memory it is given. The blob tests pin this down by counting managed allocations.
/// </remarks>
public sealed class PostgreSqlBlobStorage : IBlobStorage, IAsyncDisposable, IDisposable
{
    private const string Table = "lifl_blobs";

    // EXTERNAL: out of line in the TOAST table, uncompressed (model floats do not compress; pglz would only cost
    // time). Changing a column's storage locks the table exclusively, so it is done only where it is not yet set.
    private const string SchemaDdl = """
        CREATE TABLE IF NOT EXISTS lifl_blobs
        (
            service_id text NOT NULL,
            blob_key text NOT NULL,
            content bytea NOT NULL,
            length bigint NOT NULL,
            modified_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_lifl_blobs PRIMARY KEY (service_id, blob_key)
        );
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'lifl_blobs'::regclass AND attname = 'content' AND attstorage <> 'e') THEN
                ALTER TABLE lifl_blobs ALTER COLUMN content SET STORAGE EXTERNAL;
            END IF;
        END
        $$;
        """;

    private const string KeyFilter = "service_id = @service AND blob_key = @key";

    private const string WriteSql = """
        INSERT INTO lifl_blobs (service_id, blob_key, content, length)
        VALUES (@service, @key, @content, @length)
        ON CONFLICT (service_id, blob_key) DO UPDATE SET content = excluded.content, length = excluded.length, modified_at = now()
        """;

    private const string ReadSql = "SELECT length, content FROM lifl_blobs WHERE " + KeyFilter;

    private const string DeleteSql = "DELETE FROM lifl_blobs WHERE " + KeyFilter;

    private readonly PostgreSqlDatabase _database;
    private readonly string _serviceId;

    /// <param name="connectionString">An Npgsql connection string.</param>
    /// <param name="serviceId">The service whose payloads these are (ClusterOptions.ServiceId).</param>
    public PostgreSqlBlobStorage(string connectionString, string serviceId, ILogger<PostgreSqlBlobStorage> logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceId);
        ArgumentNullException.ThrowIfNull(logger);
        _database = new PostgreSqlDatabase(connectionString, "blob storage", Table, SchemaDdl, logger);
        _serviceId = serviceId;
    }

    public async Task WriteAsync(string key, SharedBuffer content, CancellationToken cancellationToken = default)
    {
        BlobArguments.CheckContent(key, content);

        // Over the shared memory itself: Npgsql streams it to the socket (see the remarks).
        var bytes = (ReadOnlyMemory<byte>)content.AsMemory<byte>();
        await _database.RunAsync("write a blob", Table, async connection =>
        {
            await using var command = WithKey(new NpgsqlCommand(WriteSql, connection), key)
                .With("content", bytes)
                .With("length", (long)bytes.Length);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<SharedBuffer?> ReadAsync(string key, SharedBufferPool pool, CancellationToken cancellationToken = default)
    {
        BlobArguments.CheckKey(key);
        ArgumentNullException.ThrowIfNull(pool);
        return await _database.RunAsync("read a blob", Table, async connection =>
        {
            await using var command = WithKey(new NpgsqlCommand(ReadSql, connection), key);
            await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            var length = reader.GetInt64(0);
            var stream = reader.GetStream(1);
            await using (stream.ConfigureAwait(false))
            {
                if (length < 1 || length > SharedBufferPool.MaxBufferLength || stream.Length != length)
                {
                    throw LengthMismatch(key, length, stream.Length);
                }

                return await ReadContentAsync(key, stream, length, pool, cancellationToken).ConfigureAwait(false);
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        BlobArguments.CheckKey(key);
        return await _database.RunAsync("delete a blob", Table, async connection =>
        {
            await using var command = WithKey(new NpgsqlCommand(DeleteSql, connection), key);
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => _database.DisposeAsync();

    public void Dispose() => _database.Dispose();

    /// <summary>Streams the column into a new buffer of <paramref name="pool"/>, which is disposed if anything goes wrong.</summary>
    private static async Task<SharedBuffer> ReadContentAsync(string key, Stream stream, long length, SharedBufferPool pool, CancellationToken cancellationToken)
    {
        var buffer = pool.Rent(length);
        try
        {
            var memory = buffer.AsMemory<byte>();
            var filled = 0;
            while (filled < memory.Length)
            {
                var read = await stream.ReadAsync(memory[filled..], cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    throw LengthMismatch(key, length, filled);
                }

                filled += read;
            }

            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    private NpgsqlCommand WithKey(NpgsqlCommand command, string key) =>
        command.With("service", _serviceId).With("key", key);

    private static LiflException LengthMismatch(string key, long stored, long arrived) =>
        new($"The blob stored under key '{key}' (table {Table}) is damaged: its length column says {stored.ToString(CultureInfo.InvariantCulture)} bytes, but {arrived.ToString(CultureInfo.InvariantCulture)} bytes of content arrived.");
}
