using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.LIFL.PostgreSql.Tests.Infrastructure;
using Orleans.LIFL.Runtime.MembershipService;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;
using static Orleans.LIFL.PostgreSql.Tests.Infrastructure.TestDatabase;

namespace Orleans.LIFL.PostgreSql.Tests;

/// <summary>PostgreSqlMembershipTable on a fresh database per test.</summary>
public sealed class MembershipTableTests(PostgresServer server) : IAsyncLifetime
{
    private const string ClusterId = "cluster-a";
    private readonly List<IAsyncDisposable> _owned = [];
    private string _connectionString = "";

    public async ValueTask InitializeAsync() => _connectionString = await server.CreateDatabaseAsync();

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }
    }

    /// <summary>Several silos initializing the table at once on an empty database all succeed, and one version row results.</summary>
    [Fact]
    public async Task Concurrent_initializations_create_the_tables_once()
    {
        var tables = Enumerable.Range(0, 4).Select(_ => NewTable()).ToList();

        await Task.WhenAll(tables.Select(t => Task.Run(() => t.InitializeMembershipTable(tryInitTableVersion: true))));

        Assert.Equal(
            ["orleansmembershiptable", "orleansmembershipversiontable"],
            await QueryAsync(_connectionString, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE 'orleans%' ORDER BY 1"));
        Assert.Equal(["cluster-a\t0"], await QueryAsync(_connectionString, "SELECT DeploymentId, Version FROM OrleansMembershipVersionTable"));
        var data = await tables[0].ReadAll();
        Assert.Empty(data.Members);
        Assert.Equal(new TableVersion(0, "0"), data.Version);
    }

    /// <summary>The tables have the Orleans ADO.NET clustering schema: column names, types, nullability, keys.</summary>
    [Fact]
    public async Task Tables_have_the_Orleans_schema()
    {
        await NewTable().InitializeMembershipTable(tryInitTableVersion: false);

        var columns = await QueryAsync(_connectionString, """
            SELECT table_name, column_name, data_type, character_maximum_length, datetime_precision, is_nullable
            FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name IN ('orleansmembershipversiontable', 'orleansmembershiptable')
            ORDER BY table_name, ordinal_position
            """);
        Assert.Equal(
            [
                "orleansmembershiptable\tdeploymentid\tcharacter varying\t150\tNULL\tNO",
                "orleansmembershiptable\taddress\tcharacter varying\t45\tNULL\tNO",
                "orleansmembershiptable\tport\tinteger\tNULL\tNULL\tNO",
                "orleansmembershiptable\tgeneration\tinteger\tNULL\tNULL\tNO",
                "orleansmembershiptable\tsiloname\tcharacter varying\t150\tNULL\tNO",
                "orleansmembershiptable\thostname\tcharacter varying\t150\tNULL\tNO",
                "orleansmembershiptable\tstatus\tinteger\tNULL\tNULL\tNO",
                "orleansmembershiptable\tproxyport\tinteger\tNULL\tNULL\tYES",
                "orleansmembershiptable\tsuspecttimes\tcharacter varying\t8000\tNULL\tYES",
                "orleansmembershiptable\tmetadatajson\ttext\tNULL\tNULL\tYES",
                "orleansmembershiptable\tstarttime\ttimestamp with time zone\tNULL\t3\tNO",
                "orleansmembershiptable\tiamalivetime\ttimestamp with time zone\tNULL\t3\tNO",
                "orleansmembershipversiontable\tdeploymentid\tcharacter varying\t150\tNULL\tNO",
                "orleansmembershipversiontable\ttimestamp\ttimestamp with time zone\tNULL\t3\tNO",
                "orleansmembershipversiontable\tversion\tinteger\tNULL\tNULL\tNO",
            ],
            columns);

        var constraints = await QueryAsync(_connectionString, """
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
            FROM pg_constraint
            WHERE conrelid IN ('orleansmembershipversiontable'::regclass, 'orleansmembershiptable'::regclass)
            ORDER BY 1, 2
            """);
        Assert.Equal(
            [
                "orleansmembershiptable\tfk_membershiptable_membershipversiontable_deploymentid\tFOREIGN KEY (deploymentid) REFERENCES orleansmembershipversiontable(deploymentid)",
                "orleansmembershiptable\tpk_membershiptable_deploymentid\tPRIMARY KEY (deploymentid, address, port, generation)",
                "orleansmembershipversiontable\tpk_orleansmembershipversiontable_deploymentid\tPRIMARY KEY (deploymentid)",
            ],
            constraints);
    }

    /// <summary>Every column of an inserted row reads back: status codes, suspect times, proxy port, times to the millisecond.</summary>
    [Fact]
    public async Task Inserted_rows_read_back_column_for_column()
    {
        var table = NewTable();
        await table.InitializeMembershipTable(tryInitTableVersion: true);
        var statuses = new[] { SiloStatus.Created, SiloStatus.Joining, SiloStatus.Active, SiloStatus.ShuttingDown, SiloStatus.Stopping, SiloStatus.Dead };
        var start = new DateTime(2025, 3, 4, 5, 6, 7, DateTimeKind.Utc).AddTicks(1_234_567); // 123.4567 ms
        var votes = new[]
        {
            new SuspectVote(Silo(30001, 77), start.AddTicks(1)),
            new SuspectVote(new SiloAddress(new IPEndPoint(IPAddress.Parse("fe80::1:2"), 30002), 78), start.AddSeconds(1).AddTicks(3)),
        };
        var written = statuses.Select((status, i) => Entry(Silo(20000 + i, 1000 + i), status) with
        {
            SiloName = $"silo-{i}",
            HostName = $"host-{i}",
            ProxyPort = i % 2 == 0 ? 0 : 40000 + i,
            StartTime = start.AddMinutes(i),
            IAmAliveTime = start.AddMinutes(i).AddSeconds(30),
            SuspectTimes = i == 5 ? votes : [],
        }).ToList();

        var version = (await table.ReadAll()).Version;
        foreach (var entry in written)
        {
            version = version.Next();
            Assert.True(await table.InsertRow(entry, version));
        }

        var data = await table.ReadAll();
        Assert.Equal(new TableVersion(6, "6"), data.Version);
        var read = data.Members.OrderBy(m => m.Entry.Silo.Endpoint.Port).ToList();
        Assert.Equal(6, read.Count);
        for (var i = 0; i < written.Count; i++)
        {
            var expected = written[i] with { StartTime = ToMilliseconds(written[i].StartTime), IAmAliveTime = ToMilliseconds(written[i].IAmAliveTime) };
            var (entry, etag) = read[i];
            Assert.Equal(expected with { SuspectTimes = [] }, entry with { SuspectTimes = [] });
            Assert.Equal(expected.SuspectTimes, entry.SuspectTimes);
            Assert.Equal(DateTimeKind.Utc, entry.StartTime.Kind);
            Assert.Equal(DateTimeKind.Utc, entry.IAmAliveTime.Kind);
            Assert.Equal("6", etag);
        }

        Assert.All(read[5].Entry.SuspectTimes, v => Assert.Equal(DateTimeKind.Utc, v.TimeUtc.Kind));

        // The stored values themselves, as Orleans tooling would read them.
        Assert.Equal(
            [
                "127.0.0.1\t20000\t1000\t1\t0\tNULL\t2025-03-04 05:06:07.123",
                "127.0.0.1\t20001\t1001\t2\t40001\tNULL\t2025-03-04 05:07:07.123",
                "127.0.0.1\t20002\t1002\t3\t0\tNULL\t2025-03-04 05:08:07.123",
                "127.0.0.1\t20003\t1003\t4\t40003\tNULL\t2025-03-04 05:09:07.123",
                "127.0.0.1\t20004\t1004\t5\t0\tNULL\t2025-03-04 05:10:07.123",
                "127.0.0.1\t20005\t1005\t6\t40005\t127.0.0.1:30001@77,2025-03-04T05:06:07.1234568Z|[fe80::1:2]:30002@78,2025-03-04T05:06:08.1234570Z\t2025-03-04 05:11:07.123",
            ],
            await QueryAsync(_connectionString, """
                SELECT Address, Port, Generation, Status, ProxyPort, SuspectTimes, to_char(StartTime AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')
                FROM OrleansMembershipTable WHERE DeploymentId = @d ORDER BY Port
                """, ("d", ClusterId)));
    }

    /// <summary>An insert or update that expects a version the table has moved past returns false and changes nothing.</summary>
    [Fact]
    public async Task Stale_table_version_makes_writes_fail_without_changes()
    {
        var table = NewTable();
        var first = Entry(Silo(20000), SiloStatus.Joining);
        Assert.True(await table.InsertRow(first, new TableVersion(1, "0")));
        var before = await table.ReadAll();

        // Both expect the table still at version 0, as a silo that read before the insert would.
        Assert.False(await table.InsertRow(Entry(Silo(20001), SiloStatus.Joining), new TableVersion(1, "0")));
        Assert.False(await table.UpdateRow(first with { Status = SiloStatus.Dead }, "0", new TableVersion(1, "0")));
        // Right table version, but a row etag from before the last change.
        Assert.False(await table.UpdateRow(first with { Status = SiloStatus.Dead }, "0", before.Version.Next()));
        // Inserting a silo that already has a row fails too, even at the right version.
        Assert.False(await table.InsertRow(first with { Status = SiloStatus.Dead }, before.Version.Next()));

        var after = await table.ReadAll();
        Assert.Equal(before.Version, after.Version);
        var (row, etag) = Assert.Single(after.Members);
        Assert.Equal(ToMilliseconds(first), row with { SuspectTimes = [] });
        Assert.Equal("1", etag);
        Assert.Equal(["1"], await QueryAsync(_connectionString, "SELECT Version FROM OrleansMembershipVersionTable"));
    }

    /// <summary>Of N concurrent updates that read the same table version, exactly one succeeds, and its row is stored.</summary>
    [Fact]
    public async Task Concurrent_updates_of_one_version_have_exactly_one_winner()
    {
        const int Writers = 16;
        var tables = Enumerable.Range(0, 4).Select(_ => NewTable()).ToList();
        var silo = Entry(Silo(20000), SiloStatus.Joining);
        Assert.True(await tables[0].InsertRow(silo, new TableVersion(1, "0")));
        var read = await tables[0].ReadAll();
        var etag = read.Members.Single().Etag;

        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writers = Enumerable.Range(0, Writers).Select(i => Task.Run(async () =>
        {
            await go.Task;
            var entry = silo with { Status = SiloStatus.Active, SiloName = $"writer-{i}" };
            return (Entry: entry, Won: await tables[i % tables.Count].UpdateRow(entry, etag, read.Version.Next()));
        })).ToList();
        go.SetResult();
        var results = await Task.WhenAll(writers);

        var winner = Assert.Single(results, r => r.Won);
        var after = await tables[0].ReadAll();
        Assert.Equal(new TableVersion(2, "2"), after.Version);
        Assert.Equal(ToMilliseconds(winner.Entry), after.Members.Single().Entry with { SuspectTimes = [] });
    }

    /// <summary>UpdateIAmAlive writes IAmAliveTime only: other columns, the version and the etag stay as they were.</summary>
    [Fact]
    public async Task UpdateIAmAlive_changes_only_that_column()
    {
        var table = NewTable();
        var entry = Entry(Silo(20000), SiloStatus.Active) with { SuspectTimes = [new SuspectVote(Silo(20009), new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc))] };
        Assert.True(await table.InsertRow(entry, new TableVersion(1, "0")));

        var alive = entry.IAmAliveTime.AddMinutes(5).AddTicks(42);
        await table.UpdateIAmAlive(entry with { IAmAliveTime = alive, Status = SiloStatus.Dead, SiloName = "other", ProxyPort = 1, SuspectTimes = [] });

        var data = await table.ReadAll();
        Assert.Equal(new TableVersion(1, "1"), data.Version);
        var (read, etag) = Assert.Single(data.Members);
        Assert.Equal("1", etag);
        Assert.Equal(ToMilliseconds(entry) with { IAmAliveTime = ToMilliseconds(alive), SuspectTimes = [] }, read with { SuspectTimes = [] });
        Assert.Equal(entry.SuspectTimes, read.SuspectTimes);
    }

    /// <summary>Clusters share the tables but not their rows; deleting one cluster's entries leaves the others.</summary>
    [Fact]
    public async Task Clusters_are_separate_and_deleted_separately()
    {
        var a = NewTable("cluster-a");
        var b = NewTable("cluster-b");
        Assert.True(await a.InsertRow(Entry(Silo(20000), SiloStatus.Active), new TableVersion(1, "0")));
        Assert.True(await b.InsertRow(Entry(Silo(20001), SiloStatus.Active), new TableVersion(1, "0")));
        Assert.True(await b.InsertRow(Entry(Silo(20002), SiloStatus.Active), new TableVersion(2, "1")));

        Assert.Equal([20000], (await a.ReadAll()).Members.Select(m => m.Entry.Silo.Endpoint.Port));
        await b.DeleteMembershipTableEntries("cluster-b");

        var dataB = await b.ReadAll();
        Assert.Empty(dataB.Members);
        Assert.Equal(new TableVersion(0, "0"), dataB.Version);
        Assert.Equal(new TableVersion(1, "1"), (await a.ReadAll()).Version);
        // A deleted cluster starts again from version 0.
        Assert.True(await b.InsertRow(Entry(Silo(20001), SiloStatus.Active), new TableVersion(1, "0")));
    }

    /// <summary>An unreachable server fails with an error naming the provider, operation and tables, without the password, logged once.</summary>
    [Fact]
    public async Task Unreachable_server_fails_with_a_clear_error()
    {
        var logger = new RecordingLogger<PostgreSqlMembershipTable>();
        var port = UnusedPort();
        await using var table = new PostgreSqlMembershipTable(
            $"Host=127.0.0.1;Port={port};Username=postgres;Password=hunter2-secret;Timeout=5", ClusterId, logger);

        var error = await Assert.ThrowsAsync<PostgreSqlProviderException>(() => table.ReadAll());

        Assert.StartsWith($"The membership table could not create its tables (tables OrleansMembershipVersionTable, OrleansMembershipTable, PostgreSQL at 127.0.0.1:{port}, database (default), user postgres): ", error.Message);
        Assert.DoesNotContain("hunter2", error.Message);
        Assert.Null(error.SqlState);
        var logged = Assert.Single(logger.Entries);
        Assert.Equal((LogLevel.Error, 6001), (logged.Level, logged.EventId.Id));
        Assert.DoesNotContain("hunter2", logged.Message);
    }

    /// <summary>A statement PostgreSQL rejects surfaces as an error naming the operation, the table and the SQLSTATE.</summary>
    [Fact]
    public async Task Rejected_statement_names_operation_and_table()
    {
        var table = NewTable();
        var tooManyVotes = Enumerable.Range(0, 400).Select(i => new SuspectVote(Silo(30000 + i), DateTime.UtcNow)).ToList();

        var error = await Assert.ThrowsAsync<PostgreSqlProviderException>(
            () => table.InsertRow(Entry(Silo(20000), SiloStatus.Active) with { SuspectTimes = tooManyVotes }, new TableVersion(1, "0")));

        Assert.Equal(("insert a membership row", "OrleansMembershipTable", "22001"), (error.Operation, error.Table, error.SqlState));
        Assert.Contains("could not insert a membership row (table OrleansMembershipTable", error.Message);
        Assert.Equal(new TableVersion(0, "0"), (await table.ReadAll()).Version);
    }

    private PostgreSqlMembershipTable NewTable(string clusterId = ClusterId)
    {
        var table = new PostgreSqlMembershipTable(_connectionString, clusterId, NullLogger<PostgreSqlMembershipTable>.Instance);
        _owned.Add(table);
        return table;
    }

    private static MembershipEntry Entry(SiloAddress silo, SiloStatus status) => new()
    {
        Silo = silo,
        Status = status,
        SiloName = "silo-" + silo.Endpoint.Port,
        HostName = "host",
        StartTime = new DateTime(2025, 6, 1, 12, 0, 0, 500, DateTimeKind.Utc),
        IAmAliveTime = new DateTime(2025, 6, 1, 12, 0, 10, 250, DateTimeKind.Utc),
    };

    private static MembershipEntry ToMilliseconds(MembershipEntry entry) =>
        entry with { StartTime = ToMilliseconds(entry.StartTime), IAmAliveTime = ToMilliseconds(entry.IAmAliveTime), SuspectTimes = [] };

    private static DateTime ToMilliseconds(DateTime time) => new(time.Ticks - (time.Ticks % TimeSpan.TicksPerMillisecond), DateTimeKind.Utc);
}
