using System.Globalization;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Orleans.LIFL.PostgreSql;

/// <summary>
/// One provider's way to PostgreSQL: its own data source (connection pool), the tables it creates on first use,
/// and errors that say which operation on which table failed, on which server, without the password.
/// </summary>
internal sealed partial class PostgreSqlDatabase : IAsyncDisposable, IDisposable
{
    /// <summary>
    /// The advisory lock that serializes table creation across processes: concurrent CREATE TABLE IF NOT EXISTS of
    /// the same table can otherwise fail on PostgreSQL's catalog (a duplicate key in pg_type).
    /// </summary>
    private const long SchemaLockKey = 0x4C49_464C_5047_0001;

    /// <summary>
    /// Connections one process opens to one database, all providers together, unless the connection string says
    /// otherwise ("Maximum Pool Size"). Bursts (a thousand first calls at once, each looking up the directory) wait
    /// for a pooled connection instead of exhausting the server's max_connections: a cluster of n silos holds at most
    /// 8n, so PostgreSQL's default of 100 serves a dozen silos with room for tools. The statements are short; more
    /// connections than the server has cores would mostly queue on the server instead.
    /// </summary>
    public const int DefaultMaxPoolSize = 8;

    /// <summary>
    /// Seconds a pooled connection may stay idle before it is closed, unless the connection string says otherwise
    /// ("Connection Idle Lifetime"; Npgsql's own default is 300). A burst (a deployment activating its grains) opens
    /// many connections that steady work does not need, and every one is a server process: one that lingers costs the
    /// server memory, and when this silo dies, the exit of each (about 10 ms of CPU on a small virtual machine) competes
    /// with the survivors taking over its work.
    /// </summary>
    public const int DefaultIdleLifetimeSeconds = 10;

    /// <summary>How often, in seconds, the pool looks for idle connections to close (Npgsql's default is 10).</summary>
    public const int DefaultPruningIntervalSeconds = 2;

    /// <summary>
    /// Connections the pool keeps however idle, unless the connection string says otherwise ("Minimum Pool Size"): the
    /// one that the membership table's periodic work uses. Without it that work reconnected every few seconds, and on a
    /// silo loaded enough, a reconnection once took longer than Npgsql's 15 s to open and the silo was declared dead.
    /// </summary>
    public const int DefaultMinPoolSize = 1;

    private readonly SharedDataSource.Lease _lease;
    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _logger;
    private readonly string _provider;
    private readonly string _tables;
    private readonly string _schemaDdl;
    private readonly Lock _schemaLock = new();
    private Task? _schema;

    /// <param name="connectionString">An Npgsql connection string.</param>
    /// <param name="provider">What uses the database, for messages ("membership table").</param>
    /// <param name="tables">The tables the provider owns, for messages.</param>
    /// <param name="schemaDdl">Idempotent statements that create those tables when absent.</param>
    public PostgreSqlDatabase(string connectionString, string provider, string tables, string schemaDdl, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        NpgsqlConnectionStringBuilder settings;
        try
        {
            settings = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException error)
        {
            // Npgsql names the bad keyword, never the value: the message cannot carry a password.
            throw new ArgumentException($"The PostgreSQL connection string of the {provider} is not valid: {error.Message}", nameof(connectionString), error);
        }

        Server = $"{settings.Host ?? "(default host)"}:{settings.Port.ToString(CultureInfo.InvariantCulture)}, database {settings.Database ?? "(default)"}, user {settings.Username ?? "(default)"}";
        ApplyPoolDefaults(settings);
        _lease = SharedDataSource.Acquire(settings.ConnectionString, () => NpgsqlDataSource.Create(settings));
        _dataSource = _lease.DataSource;
        _provider = provider;
        _tables = tables;
        _schemaDdl = schemaDdl;
        _logger = logger;
    }

    /// <summary>
    /// The project's pool settings (<see cref="DefaultMaxPoolSize"/> and the others), each where the connection string
    /// <paramref name="settings"/> was parsed from does not give the setting itself, under any of Npgsql's names for it.
    /// </summary>
    internal static void ApplyPoolDefaults(NpgsqlConnectionStringBuilder settings)
    {
        // Npgsql lists the settings the string gave, by their canonical names ("MaxPoolSize" is "Maximum Pool Size").
        var given = settings.Keys.Cast<string>().ToHashSet(StringComparer.OrdinalIgnoreCase);
        if (!given.Contains("Maximum Pool Size"))
        {
            // Never below a minimum the string gave.
            settings.MaxPoolSize = Math.Max(DefaultMaxPoolSize, settings.MinPoolSize);
        }

        if (!given.Contains("Minimum Pool Size"))
        {
            settings.MinPoolSize = Math.Min(DefaultMinPoolSize, settings.MaxPoolSize);
        }

        if (!given.Contains("Connection Idle Lifetime"))
        {
            settings.ConnectionIdleLifetime = DefaultIdleLifetimeSeconds;
        }

        if (!given.Contains("Connection Pruning Interval"))
        {
            // Npgsql refuses an interval longer than the idle lifetime.
            settings.ConnectionPruningInterval = Math.Min(DefaultPruningIntervalSeconds, settings.ConnectionIdleLifetime);
        }
    }

    /// <summary>Where the provider connects, for messages: host, port, database and user (never the password).</summary>
    public string Server { get; }

    /// <summary>Creates the provider's tables if they are absent (once per instance, again after a failure).</summary>
    public Task EnsureSchemaAsync()
    {
        var schema = Volatile.Read(ref _schema);
        if (schema is { IsFaulted: false, IsCanceled: false })
        {
            return schema;
        }

        lock (_schemaLock)
        {
            if (_schema is null || _schema.IsFaulted || _schema.IsCanceled)
            {
                _schema = CreateSchemaAsync();
            }

            return _schema;
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/> on an open connection, after the tables exist. A PostgreSQL or connection error
    /// is logged once and rethrown as a <see cref="PostgreSqlProviderException"/> naming the operation and table.
    /// <paramref name="cancellationToken"/> stops the wait for the tables and for a connection (the body takes it
    /// for its own statements); a cancellation surfaces as an <see cref="OperationCanceledException"/>.
    /// </summary>
    public async Task<T> RunAsync<T>(string operation, string table, Func<NpgsqlConnection, Task<T>> body, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await EnsureSchemaAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        return await RunWithoutSchemaAsync(operation, table, body, cancellationToken).ConfigureAwait(false);
    }

    public async Task RunAsync(string operation, string table, Func<NpgsqlConnection, Task> body, CancellationToken cancellationToken = default) =>
        await RunAsync(operation, table, async connection =>
        {
            await body(connection).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);

    private async Task<T> RunWithoutSchemaAsync<T>(string operation, string table, Func<NpgsqlConnection, Task<T>> body, CancellationToken cancellationToken = default)
    {
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                return await body(connection).ConfigureAwait(false);
            }
        }
        catch (Exception error) when (error is NpgsqlException or TimeoutException)
        {
            LogOperationFailed(_logger, _provider, operation, table, Server, error);
            var tables = table.Contains(',', StringComparison.Ordinal) ? "tables" : "table";
            throw new PostgreSqlProviderException(
                $"The {_provider} could not {operation} ({tables} {table}, PostgreSQL at {Server}): {error.Message}",
                operation,
                table,
                (error as PostgresException)?.SqlState,
                error);
        }
    }

    private Task CreateSchemaAsync() =>
        RunWithoutSchemaAsync("create its tables", _tables, async connection =>
        {
            var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await using (var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@key)", connection, transaction))
                {
                    command.Parameters.Add(new NpgsqlParameter<long>("key", SchemaLockKey));
                    await command.ExecuteNonQueryAsync().ConfigureAwait(false);
                }

                await using (var command = new NpgsqlCommand(_schemaDdl, connection, transaction))
                {
                    await command.ExecuteNonQueryAsync().ConfigureAwait(false);
                }

                await transaction.CommitAsync().ConfigureAwait(false);
            }

            LogSchemaReady(_logger, _provider, _tables, Server);
            return true;
        });

    public ValueTask DisposeAsync() => _lease.ReleaseAsync();

    public void Dispose() => _lease.ReleaseAsync().AsTask().GetAwaiter().GetResult();

    [LoggerMessage(EventId = 6001, Level = LogLevel.Error, Message = "The {Provider} could not {Operation} (table(s) {Table}, PostgreSQL at {Server})")]
    private static partial void LogOperationFailed(ILogger logger, string provider, string operation, string table, string server, Exception error);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Debug, Message = "The {Provider} has its tables {Tables} (PostgreSQL at {Server})")]
    private static partial void LogSchemaReady(ILogger logger, string provider, string tables, string server);
}
