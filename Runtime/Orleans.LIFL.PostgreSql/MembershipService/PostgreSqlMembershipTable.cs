using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.LIFL.Runtime.MembershipService;

namespace Orleans.LIFL.PostgreSql;

/// <summary>
/// The membership table in PostgreSQL, in the schema of Orleans' ADO.NET clustering provider
/// (OrleansMembershipVersionTable and OrleansMembershipTable; DeploymentId is the cluster id), so Orleans tooling
/// can read it. The tables are created on first use.
/// </summary>
/// <remarks>
/// Every change bumps the deployment's version row in the same transaction as the member row, guarded by
/// <c>WHERE Version = expected</c>: of several writers that read the same version, exactly one commits.
/// A row's etag is, as in Orleans, the table version it was read at: <see cref="UpdateRow"/> accepts it only when
/// it names the version the write expects to replace, which is also checked in the database, so a row read before
/// any later change can never overwrite it. The etag ignores <see cref="UpdateIAmAlive"/>, which changes nothing
/// but IAmAliveTime and does not bump the version.
/// </remarks>
public sealed partial class PostgreSqlMembershipTable : IMembershipTable, IAsyncDisposable, IDisposable
{
    private const string VersionTable = "OrleansMembershipVersionTable";
    private const string MemberTable = "OrleansMembershipTable";
    private const int MaxDeploymentIdLength = 150;

    /// <summary>The Orleans ADO.NET clustering tables (PostgreSQL flavour), created when absent.</summary>
    private const string SchemaDdl = """
        CREATE TABLE IF NOT EXISTS OrleansMembershipVersionTable
        (
            DeploymentId varchar(150) NOT NULL,
            Timestamp timestamptz(3) NOT NULL DEFAULT now(),
            Version integer NOT NULL DEFAULT 0,
            CONSTRAINT PK_OrleansMembershipVersionTable_DeploymentId PRIMARY KEY (DeploymentId)
        );
        CREATE TABLE IF NOT EXISTS OrleansMembershipTable
        (
            DeploymentId varchar(150) NOT NULL,
            Address varchar(45) NOT NULL,
            Port integer NOT NULL,
            Generation integer NOT NULL,
            SiloName varchar(150) NOT NULL,
            HostName varchar(150) NOT NULL,
            Status integer NOT NULL,
            ProxyPort integer NULL,
            SuspectTimes varchar(8000) NULL,
            MetadataJson text NULL,
            StartTime timestamptz(3) NOT NULL,
            IAmAliveTime timestamptz(3) NOT NULL,
            CONSTRAINT PK_MembershipTable_DeploymentId PRIMARY KEY (DeploymentId, Address, Port, Generation),
            CONSTRAINT FK_MembershipTable_MembershipVersionTable_DeploymentId
                FOREIGN KEY (DeploymentId) REFERENCES OrleansMembershipVersionTable (DeploymentId)
        );
        """;

    private const string InsertVersionRowSql = """
        INSERT INTO OrleansMembershipVersionTable (DeploymentId) VALUES (@deployment)
        ON CONFLICT (DeploymentId) DO NOTHING
        """;

    private const string BumpVersionSql = """
        UPDATE OrleansMembershipVersionTable SET Version = @version, Timestamp = now()
        WHERE DeploymentId = @deployment AND Version = @expected
        """;

    private const string ReadAllSql = """
        SELECT v.Version, m.Address, m.Port, m.Generation, m.SiloName, m.HostName, m.Status, m.ProxyPort,
               m.SuspectTimes, m.StartTime, m.IAmAliveTime
        FROM OrleansMembershipVersionTable v
        LEFT JOIN OrleansMembershipTable m ON m.DeploymentId = v.DeploymentId
        WHERE v.DeploymentId = @deployment
        ORDER BY m.Address, m.Port, m.Generation
        """;

    private const string InsertMemberSql = """
        INSERT INTO OrleansMembershipTable
            (DeploymentId, Address, Port, Generation, SiloName, HostName, Status, ProxyPort, SuspectTimes, StartTime, IAmAliveTime)
        VALUES
            (@deployment, @address, @port, @generation, @siloName, @hostName, @status, @proxyPort, @suspectTimes, @startTime, @iAmAliveTime)
        ON CONFLICT (DeploymentId, Address, Port, Generation) DO NOTHING
        """;

    private const string UpdateMemberSql = """
        UPDATE OrleansMembershipTable
        SET SiloName = @siloName, HostName = @hostName, Status = @status, ProxyPort = @proxyPort,
            SuspectTimes = @suspectTimes, StartTime = @startTime, IAmAliveTime = @iAmAliveTime
        WHERE DeploymentId = @deployment AND Address = @address AND Port = @port AND Generation = @generation
        """;

    private const string UpdateIAmAliveSql = """
        UPDATE OrleansMembershipTable SET IAmAliveTime = @iAmAliveTime
        WHERE DeploymentId = @deployment AND Address = @address AND Port = @port AND Generation = @generation
        """;

    private const string DeleteDeploymentSql = """
        DELETE FROM OrleansMembershipTable WHERE DeploymentId = @deployment;
        DELETE FROM OrleansMembershipVersionTable WHERE DeploymentId = @deployment;
        """;

    private readonly PostgreSqlDatabase _database;
    private readonly string _clusterId;
    private readonly ILogger _logger;

    /// <param name="connectionString">An Npgsql connection string.</param>
    /// <param name="clusterId">The cluster id, stored as the Orleans DeploymentId (at most 150 characters).</param>
    public PostgreSqlMembershipTable(string connectionString, string clusterId, ILogger<PostgreSqlMembershipTable> logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterId);
        ArgumentNullException.ThrowIfNull(logger);
        if (clusterId.Length > MaxDeploymentIdLength)
        {
            throw new ArgumentException($"The cluster id '{clusterId}' is longer than the {MaxDeploymentIdLength} characters of the DeploymentId column.", nameof(clusterId));
        }

        _database = new PostgreSqlDatabase(connectionString, "membership table", $"{VersionTable}, {MemberTable}", SchemaDdl, logger);
        _clusterId = clusterId;
        _logger = logger;
    }

    /// <summary>
    /// Creates the tables if they are absent and, when <paramref name="tryInitTableVersion"/> is set, the cluster's
    /// version row (version 0). Safe to run from many silos at once. Other operations create the tables on first
    /// use as well, and <see cref="InsertRow"/> creates a missing version row when it expects version 0.
    /// </summary>
    public async Task InitializeMembershipTable(bool tryInitTableVersion)
    {
        await _database.EnsureSchemaAsync().ConfigureAwait(false);
        if (!tryInitTableVersion)
        {
            return;
        }

        var created = await _database.RunAsync("create the cluster's version row", VersionTable, async connection =>
        {
            await using var command = new NpgsqlCommand(InsertVersionRowSql, connection).With("deployment", _clusterId);
            return await command.ExecuteNonQueryAsync().ConfigureAwait(false) == 1;
        }).ConfigureAwait(false);
        if (created)
        {
            LogVersionRowCreated(_logger, _clusterId);
        }
    }

    /// <summary>
    /// Every member row of the cluster and its version. A cluster without a version row reads as version 0 with no
    /// members. Each row's etag is the version read.
    /// </summary>
    public Task<MembershipTableData> ReadAll() =>
        _database.RunAsync("read the membership rows", MemberTable, async connection =>
        {
            await using var command = new NpgsqlCommand(ReadAllSql, connection).With("deployment", _clusterId);
            await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
            var version = 0;
            var members = new List<MembershipEntry>();
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                version = reader.GetInt32(0);
                if (!reader.IsDBNull(1))
                {
                    members.Add(ReadEntry(reader));
                }
            }

            var etag = FormatVersion(version);
            return new MembershipTableData(members.Select(m => (m, etag)).ToList(), new TableVersion(version, etag));
        });

    /// <summary>
    /// Inserts the row if the silo has none and the cluster is still at <c>tableVersion.Version - 1</c>, moving it to
    /// <paramref name="tableVersion"/>; false (and no change) otherwise.
    /// </summary>
    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(tableVersion);
        var expected = tableVersion.Version - 1;
        return _database.RunAsync("insert a membership row", MemberTable, async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
            if (expected == 0)
            {
                // A cluster nobody initialized is at version 0: make its version row so the check below can hold.
                await using var init = new NpgsqlCommand(InsertVersionRowSql, connection, transaction).With("deployment", _clusterId);
                await init.ExecuteNonQueryAsync().ConfigureAwait(false);
            }

            if (!await TryBumpVersionAsync(connection, transaction, expected, tableVersion.Version).ConfigureAwait(false))
            {
                return false;
            }

            await using var insert = WithMemberColumns(new NpgsqlCommand(InsertMemberSql, connection, transaction), entry);
            if (await insert.ExecuteNonQueryAsync().ConfigureAwait(false) != 1)
            {
                return false; // the silo already has a row; disposing the transaction undoes the version bump
            }

            await transaction.CommitAsync().ConfigureAwait(false);
            return true;
        });
    }

    /// <summary>
    /// Replaces the silo's row if <paramref name="etag"/> is the version the cluster is still at
    /// (<c>tableVersion.Version - 1</c>), moving it to <paramref name="tableVersion"/>; false (and no change) otherwise,
    /// or when the silo has no row.
    /// </summary>
    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(tableVersion);
        var expected = tableVersion.Version - 1;
        if (!int.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out var rowVersion) || rowVersion != expected)
        {
            return Task.FromResult(false);
        }

        return _database.RunAsync("update a membership row", MemberTable, async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
            if (!await TryBumpVersionAsync(connection, transaction, expected, tableVersion.Version).ConfigureAwait(false))
            {
                return false;
            }

            await using var update = WithMemberColumns(new NpgsqlCommand(UpdateMemberSql, connection, transaction), entry);
            if (await update.ExecuteNonQueryAsync().ConfigureAwait(false) != 1)
            {
                return false;
            }

            await transaction.CommitAsync().ConfigureAwait(false);
            return true;
        });
    }

    /// <summary>Sets the row's IAmAliveTime and nothing else (no version bump); a missing row is left missing.</summary>
    public Task UpdateIAmAlive(MembershipEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return _database.RunAsync("update IAmAliveTime", MemberTable, async connection =>
        {
            await using var command = WithKey(new NpgsqlCommand(UpdateIAmAliveSql, connection), entry.Silo)
                .With("iAmAliveTime", MembershipTimes.ToColumn(entry.IAmAliveTime));
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        });
    }

    /// <summary>Removes every row of a cluster, its version row included (for tests and decommissioning).</summary>
    public Task DeleteMembershipTableEntries(string clusterId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterId);
        return _database.RunAsync("delete the cluster's membership rows", $"{MemberTable}, {VersionTable}", async connection =>
        {
            await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
            await using (var command = new NpgsqlCommand(DeleteDeploymentSql, connection, transaction).With("deployment", clusterId))
            {
                await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            }

            await transaction.CommitAsync().ConfigureAwait(false);
        });
    }

    public ValueTask DisposeAsync() => _database.DisposeAsync();

    public void Dispose() => _database.Dispose();

    private async Task<bool> TryBumpVersionAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, int expected, int version)
    {
        // Row-locks the version row: a concurrent writer waits here, then finds the version moved and updates nothing.
        await using var bump = new NpgsqlCommand(BumpVersionSql, connection, transaction)
            .With("deployment", _clusterId)
            .With("expected", expected)
            .With("version", version);
        return await bump.ExecuteNonQueryAsync().ConfigureAwait(false) == 1;
    }

    private NpgsqlCommand WithKey(NpgsqlCommand command, SiloAddress silo) =>
        command.With("deployment", _clusterId)
            .With("address", silo.Endpoint.Address.ToString())
            .With("port", silo.Endpoint.Port)
            .With("generation", silo.Generation);

    private NpgsqlCommand WithMemberColumns(NpgsqlCommand command, MembershipEntry entry) =>
        WithKey(command, entry.Silo)
            .With("siloName", entry.SiloName)
            .With("hostName", entry.HostName)
            .With("status", (int)entry.Status)
            .With("proxyPort", entry.ProxyPort)
            .WithNullableText("suspectTimes", SuspectTimesFormat.Format(entry.SuspectTimes))
            .With("startTime", MembershipTimes.ToColumn(entry.StartTime))
            .With("iAmAliveTime", MembershipTimes.ToColumn(entry.IAmAliveTime));

    private static MembershipEntry ReadEntry(NpgsqlDataReader reader) => new()
    {
        Silo = new SiloAddress(new IPEndPoint(IPAddress.Parse(reader.GetString(1)), reader.GetInt32(2)), reader.GetInt32(3)),
        SiloName = reader.GetString(4),
        HostName = reader.GetString(5),
        Status = (SiloStatus)reader.GetInt32(6),
        ProxyPort = reader.IsDBNull(7) ? 0 : reader.GetInt32(7),
        SuspectTimes = SuspectTimesFormat.Parse(reader.IsDBNull(8) ? null : reader.GetString(8)),
        StartTime = reader.GetDateTime(9),
        IAmAliveTime = reader.GetDateTime(10),
    };

    private static string FormatVersion(int version) => version.ToString(CultureInfo.InvariantCulture);

    [LoggerMessage(EventId = 6010, Level = LogLevel.Information, Message = "Created the membership version row of cluster {ClusterId}")]
    private static partial void LogVersionRowCreated(ILogger logger, string clusterId);
}
