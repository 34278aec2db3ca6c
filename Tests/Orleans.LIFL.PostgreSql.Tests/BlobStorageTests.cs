using Microsoft.Extensions.Logging.Abstractions;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;
using static Orleans.LIFL.PostgreSql.Tests.Infrastructure.TestDatabase;

namespace Orleans.LIFL.PostgreSql.Tests;

/// <summary>Runs alone: a test in it counts the managed allocations of the whole process.</summary>
[CollectionDefinition(DisableParallelization = true)]
public sealed class AllocationCountingCollection;

/// <summary>PostgreSqlBlobStorage on a fresh database and a fresh shared pool per test.</summary>
[Collection(typeof(AllocationCountingCollection))]
public sealed class BlobStorageTests(PostgresServer server) : IAsyncLifetime
{
    private const int Mebibyte = 1 << 20;
    private const string ServiceId = "service-a";
    private readonly string _poolName = "t" + Guid.NewGuid().ToString("N")[..12];
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<SharedBuffer> _buffers = [];
    private SharedBufferPool _pool = null!;
    private string _connectionString = "";

    private static CancellationToken Cancellation => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _connectionString = await server.CreateDatabaseAsync();
        _pool = SharedBufferPool.Open(_poolName, 256L * Mebibyte);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }

        foreach (var buffer in _buffers)
        {
            buffer.Dispose();
        }

        _pool.Dispose();
        SharedBufferPool.RemoveIfUnused(_poolName);
    }

    /// <summary>
    /// A buffer reads back byte for byte into a new buffer of the pool; rewriting a key replaces its bytes; other keys
    /// and other services keep their own.
    /// </summary>
    [Fact]
    public async Task Written_buffer_reads_back_and_a_rewrite_replaces_it()
    {
        var storage = NewStorage();
        var first = Filled(3 * Mebibyte + 12_345, seed: 1);
        await storage.WriteAsync("model/1", first, Cancellation);
        await storage.WriteAsync("model/2", Filled(5_000, seed: 2), Cancellation);

        var read = Owned(await storage.ReadAsync("model/1", _pool, Cancellation));
        Assert.NotEqual(first.Descriptor, read.Descriptor);
        AssertSameBytes(first, read);

        var second = Filled(Mebibyte + 1, seed: 3);
        await storage.WriteAsync("model/1", second, Cancellation);
        AssertSameBytes(second, Owned(await storage.ReadAsync("model/1", _pool, Cancellation)));
        AssertSameBytes(Filled(5_000, seed: 2), Owned(await storage.ReadAsync("model/2", _pool, Cancellation)));
        Assert.Equal(
            [$"{ServiceId}\tmodel/1\t{Mebibyte + 1}", $"{ServiceId}\tmodel/2\t5000"],
            await QueryAsync(_connectionString, "SELECT service_id, blob_key, length FROM lifl_blobs ORDER BY blob_key"));

        var otherService = NewStorage("service-b");
        Assert.Null(await otherService.ReadAsync("model/1", _pool, Cancellation));
        await otherService.WriteAsync("model/1", Filled(100, seed: 4), Cancellation);
        AssertSameBytes(second, Owned(await storage.ReadAsync("model/1", _pool, Cancellation)));
        AssertSameBytes(Filled(100, seed: 4), Owned(await otherService.ReadAsync("model/1", _pool, Cancellation)));
    }

    /// <summary>A key with nothing stored reads as null; delete says whether it removed a row, and what it removed is gone.</summary>
    [Fact]
    public async Task Missing_key_reads_as_null_and_delete_says_whether_it_removed()
    {
        var storage = NewStorage();
        Assert.Null(await storage.ReadAsync("absent", _pool, Cancellation));
        await storage.WriteAsync("model", Filled(10_000, seed: 1), Cancellation);

        Assert.True(await storage.DeleteAsync("model", Cancellation));
        Assert.False(await storage.DeleteAsync("model", Cancellation));
        Assert.Null(await storage.ReadAsync("model", _pool, Cancellation));
        Assert.Equal(["0"], await QueryAsync(_connectionString, "SELECT count(*) FROM lifl_blobs"));
        Assert.Equal(0, _pool.GetStatistics().LiveHandles - _buffers.Count);
    }

    /// <summary>An empty or too long key and a disposed buffer are refused before any database work, each with its reason.</summary>
    [Fact]
    public async Task Bad_arguments_are_refused_naming_the_problem()
    {
        var storage = NewStorage();
        var content = Filled(100, seed: 1);
        var disposed = _pool.Rent(100);
        disposed.Dispose();

        var empty = await Assert.ThrowsAsync<ArgumentException>(() => storage.WriteAsync("", content, Cancellation));
        Assert.Equal(("key", "A blob key must not be empty. (Parameter 'key')"), (empty.ParamName, empty.Message));
        var emptyRead = await Assert.ThrowsAsync<ArgumentException>(() => storage.ReadAsync("", _pool, Cancellation));
        Assert.StartsWith("A blob key must not be empty.", emptyRead.Message);
        var emptyDelete = await Assert.ThrowsAsync<ArgumentException>(() => storage.DeleteAsync("", Cancellation));
        Assert.StartsWith("A blob key must not be empty.", emptyDelete.Message);

        var tooLong = await Assert.ThrowsAsync<ArgumentException>(() => storage.WriteAsync(new string('k', 1001), content, Cancellation));
        Assert.Equal("A blob key is at most 1000 characters; this one has 1001. (Parameter 'key')", tooLong.Message);

        var gone = await Assert.ThrowsAsync<ArgumentException>(() => storage.WriteAsync("model", disposed, Cancellation));
        Assert.Equal(("content", "The content to store under blob key 'model' is a disposed buffer. (Parameter 'content')"), (gone.ParamName, gone.Message));

        // Nothing was sent: not even the table was created.
        Assert.Equal(["0"], await QueryAsync(_connectionString, "SELECT count(*) FROM pg_class WHERE relname = 'lifl_blobs'"));
        // A key of the longest length is fine.
        await storage.WriteAsync(new string('k', 1000), content, Cancellation);
    }

    /// <summary>
    /// Writing and reading 32 MiB allocates far less managed memory than the payload: the bytes go between the socket
    /// and the shared pool without a managed copy (a ToArray or a byte[] of the payload on either side fails this).
    /// </summary>
    [Fact]
    public async Task Writing_and_reading_make_no_managed_copy_of_the_payload()
    {
        const int Length = 32 * Mebibyte;
        var storage = NewStorage();
        // The first calls create the table, open a connection and load Npgsql's types: not what is measured.
        await storage.WriteAsync("warm-up", Filled(10_000, seed: 1), Cancellation);
        Owned(await storage.ReadAsync("warm-up", _pool, Cancellation));
        var payload = Filled(Length, seed: 2);

        var before = GC.GetTotalAllocatedBytes(precise: true);
        await storage.WriteAsync("model", payload, Cancellation);
        var afterWrite = GC.GetTotalAllocatedBytes(precise: true);
        var read = Owned(await storage.ReadAsync("model", _pool, Cancellation));
        var afterRead = GC.GetTotalAllocatedBytes(precise: true);

        AssertSameBytes(payload, read);
        Assert.True(
            afterRead - before < Length / 4,
            $"writing and reading {Length:N0} bytes allocated {afterWrite - before:N0} + {afterRead - afterWrite:N0} managed bytes");
    }

    /// <summary>The content column is kept out of line without compression (STORAGE EXTERNAL), so no time goes to pglz.</summary>
    [Fact]
    public async Task Content_is_stored_uncompressed()
    {
        var storage = NewStorage();
        var zeros = _pool.Rent(Mebibyte);
        _buffers.Add(zeros);
        zeros.Span.Clear();

        await storage.WriteAsync("zeros", zeros, Cancellation);

        Assert.Equal(["e"], await QueryAsync(_connectionString, "SELECT attstorage FROM pg_attribute WHERE attrelid = 'lifl_blobs'::regclass AND attname = 'content'"));
        // Even a megabyte of zeros, the most compressible of payloads, is stored as it is.
        Assert.Equal(["NULL"], await QueryAsync(_connectionString, "SELECT pg_column_compression(content) FROM lifl_blobs"));
        Assert.Equal([$"{Mebibyte}"], await QueryAsync(_connectionString, "SELECT pg_column_size(content) FROM lifl_blobs"));
    }

    /// <summary>A row whose length column disagrees with its content is refused naming the key, and no buffer is left behind.</summary>
    [Fact]
    public async Task Length_mismatch_is_refused_naming_the_key()
    {
        var storage = NewStorage();
        await storage.WriteAsync("model/7", Filled(10_000, seed: 1), Cancellation);
        await QueryAsync(_connectionString, "UPDATE lifl_blobs SET length = 10001");
        var handles = _pool.GetStatistics().LiveHandles;

        var error = await Assert.ThrowsAsync<LiflException>(() => storage.ReadAsync("model/7", _pool, Cancellation));

        Assert.Equal(
            "The blob stored under key 'model/7' (table lifl_blobs) is damaged: its length column says 10001 bytes, but 10000 bytes of content arrived.",
            error.Message);
        Assert.Equal(handles, _pool.GetStatistics().LiveHandles);
        // The connection is still good for the next call.
        Assert.True(await storage.DeleteAsync("model/7", Cancellation));
    }

    /// <summary>A cancelled token stops each call with OperationCanceledException, changing nothing and renting nothing.</summary>
    [Fact]
    public async Task Cancelled_calls_change_nothing()
    {
        var storage = NewStorage();
        var content = Filled(10_000, seed: 1);
        await storage.WriteAsync("model", content, Cancellation);
        var handles = _pool.GetStatistics().LiveHandles;
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => storage.WriteAsync("other", content, cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => storage.ReadAsync("model", _pool, cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => storage.DeleteAsync("model", cancelled.Token));

        Assert.Equal(["model"], await QueryAsync(_connectionString, "SELECT blob_key FROM lifl_blobs"));
        Assert.Equal(handles, _pool.GetStatistics().LiveHandles);
    }

    /// <summary>An unreachable server fails with a PostgreSqlProviderException naming the operation and the table.</summary>
    [Fact]
    public async Task Unreachable_server_fails_naming_the_operation_and_table()
    {
        var port = UnusedPort();
        await using var storage = new PostgreSqlBlobStorage(
            $"Host=127.0.0.1;Port={port};Username=postgres;Timeout=5", ServiceId, NullLogger<PostgreSqlBlobStorage>.Instance);
        var handles = _pool.GetStatistics().LiveHandles;

        var error = await Assert.ThrowsAsync<PostgreSqlProviderException>(() => storage.ReadAsync("model", _pool, Cancellation));

        Assert.Equal(("create its tables", "lifl_blobs", null), (error.Operation, error.Table, error.SqlState));
        Assert.StartsWith($"The blob storage could not create its tables (table lifl_blobs, PostgreSQL at 127.0.0.1:{port}, database (default), user postgres): ", error.Message);
        Assert.Equal(handles, _pool.GetStatistics().LiveHandles);
    }

    /// <summary>Statements PostgreSQL rejects (here: the table was dropped behind the storage's back) name the operation and table.</summary>
    [Fact]
    public async Task Rejected_statements_name_the_operation_and_table()
    {
        var storage = NewStorage();
        var content = Filled(100, seed: 1);
        await storage.WriteAsync("model", content, Cancellation);
        await QueryAsync(_connectionString, "DROP TABLE lifl_blobs");

        var write = await Assert.ThrowsAsync<PostgreSqlProviderException>(() => storage.WriteAsync("model", content, Cancellation));
        var read = await Assert.ThrowsAsync<PostgreSqlProviderException>(() => storage.ReadAsync("model", _pool, Cancellation));
        var delete = await Assert.ThrowsAsync<PostgreSqlProviderException>(() => storage.DeleteAsync("model", Cancellation));

        Assert.Equal(
            [("write a blob", "lifl_blobs", "42P01"), ("read a blob", "lifl_blobs", "42P01"), ("delete a blob", "lifl_blobs", "42P01")],
            [(write.Operation, write.Table, write.SqlState), (read.Operation, read.Table, read.SqlState), (delete.Operation, delete.Table, delete.SqlState)]);
        Assert.StartsWith("The blob storage could not write a blob (table lifl_blobs, PostgreSQL at ", write.Message);
    }

    private PostgreSqlBlobStorage NewStorage(string serviceId = ServiceId)
    {
        var storage = new PostgreSqlBlobStorage(_connectionString, serviceId, NullLogger<PostgreSqlBlobStorage>.Instance);
        _owned.Add(storage);
        return storage;
    }

    /// <summary>A buffer of the pool holding <paramref name="length"/> bytes from a seeded generator, disposed with the test.</summary>
    private SharedBuffer Filled(int length, int seed)
    {
        var buffer = Owned(_pool.Rent(length));
        new Random(seed).NextBytes(buffer.Span);
        return buffer;
    }

    private SharedBuffer Owned(SharedBuffer? buffer)
    {
        Assert.NotNull(buffer);
        _buffers.Add(buffer);
        return buffer;
    }

    private static void AssertSameBytes(SharedBuffer expected, SharedBuffer actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        // The length of the common prefix: where the first difference is, without copying either buffer.
        Assert.Equal(expected.Length, expected.Span.CommonPrefixLength(actual.Span));
    }
}
