using System.Collections.Concurrent;
using Npgsql;
using Orleans.LIFL.PostgreSql.Development;
using Xunit;

namespace Orleans.LIFL.Testing.PostgreSql;

/// <summary>
/// A real PostgreSQL server for a test assembly, shared by its tests:
/// <c>[assembly: AssemblyFixture(typeof(PostgresServer))]</c>, then take it as a test class constructor parameter.
/// It is the server named by <see cref="EnvironmentVariable"/> when set (<c>./lifl test</c> starts one for the whole
/// run); otherwise a private instance this fixture starts (initdb into a temporary directory, a free port from 55432,
/// trust authentication on 127.0.0.1) and stops and deletes when the assembly's tests are done. When PostgreSQL is not
/// installed the fixture fails, and with it every test that uses it: these tests are never skipped.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    /// <summary>An Npgsql connection string to a server the tests may create databases on.</summary>
    public const string EnvironmentVariable = "LIFL_TEST_POSTGRES";

    private readonly ConcurrentQueue<string> _databases = new();
    private PrivatePostgresServer? _instance;
    private NpgsqlDataSource? _admin;

    /// <summary>The server's connection string (its maintenance database).</summary>
    public string ConnectionString { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(configured))
        {
            try
            {
                _instance = await PrivatePostgresServer.StartAsync();
            }
            catch (InvalidOperationException error) when (error.Message == PrivatePostgresServer.MissingMessage)
            {
                throw new InvalidOperationException($"{error.Message} (or set {EnvironmentVariable} to a server's connection string).", error);
            }

            ConnectionString = _instance.ConnectionString;
        }
        else
        {
            ConnectionString = configured;
        }

        _admin = NpgsqlDataSource.Create(ConnectionString);
        try
        {
            await using var command = _admin.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync();
        }
        catch (NpgsqlException error)
        {
            var source = _instance is null ? $"{EnvironmentVariable} names" : "the private instance is";
            throw new InvalidOperationException($"The test PostgreSQL server {source} not reachable ({Describe(ConnectionString)}): {error.Message}", error);
        }
    }

    /// <summary>
    /// A new, empty database for one test (or test class), so tests running in parallel never see each other's
    /// tables; returns its connection string. Dropped when the fixture is disposed.
    /// </summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var admin = _admin ?? throw new InvalidOperationException("The PostgreSQL fixture is not initialized.");
        var name = "lifl_test_" + Guid.NewGuid().ToString("N");
        // Identifiers cannot be parameters; the name is generated here (letters, digits, '_').
        await using (var command = admin.CreateCommand($"CREATE DATABASE {name}"))
        {
            await command.ExecuteNonQueryAsync();
        }

        _databases.Enqueue(name);
        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name }.ConnectionString;
    }

    public async ValueTask DisposeAsync()
    {
        if (_instance is not null)
        {
            // The whole private server goes, its databases with it.
            if (_admin is not null)
            {
                await _admin.DisposeAsync();
            }

            await _instance.DisposeAsync();
            return;
        }

        if (_admin is null)
        {
            return;
        }

        NpgsqlConnection.ClearAllPools();
        while (_databases.TryDequeue(out var name))
        {
            await using var command = _admin.CreateCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            await command.ExecuteNonQueryAsync();
        }

        await _admin.DisposeAsync();
    }

    /// <summary>The connection string without its password, for messages.</summary>
    internal static string Describe(string connectionString)
    {
        var settings = new NpgsqlConnectionStringBuilder(connectionString);
        return $"host {settings.Host}, port {settings.Port}, user {settings.Username ?? "(default)"}";
    }
}
