using Microsoft.Extensions.Logging.Abstractions;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;
using static Orleans.LIFL.PostgreSql.Tests.Infrastructure.TestDatabase;

namespace Orleans.LIFL.PostgreSql.Tests;

/// <summary>PostgreSqlGrainDirectory on a fresh database per test; several instances stand for several silo processes.</summary>
public sealed class GrainDirectoryTests(PostgresServer server) : IAsyncLifetime
{
    private const string ClusterId = "cluster-a";
    private const string DirectoryTable = "lifl_grain_directory";
    private static readonly GrainType TestGrain = new("test-grain");
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

    /// <summary>Many concurrent registrations of one grain from several processes: one wins, and every caller is told the winner.</summary>
    [Fact]
    public async Task Concurrent_registrations_have_one_winner()
    {
        const int Registrations = 32;
        var directories = Enumerable.Range(0, 4).Select(_ => NewDirectory()).ToList();
        var grain = GrainId.Create(TestGrain, "contended");
        var candidates = Enumerable.Range(0, Registrations).Select(i => new GrainAddress(grain, Silo(20000 + i), new ActivationId(1000 + i))).ToList();
        await WarmUpAsync(directories, Registrations);

        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var registrations = candidates.Select((address, i) => Task.Run(async () =>
        {
            await go.Task;
            return await directories[i % directories.Count].Register(address, _ => false);
        })).ToList();
        go.SetResult();
        var results = await Task.WhenAll(registrations);

        var winner = results[0];
        Assert.Contains(winner, candidates);
        Assert.All(results, r => Assert.Equal(winner, r));
        Assert.Equal(winner, await directories[3].Lookup(grain));
        Assert.Equal(["1"], await QueryAsync(_connectionString, $"SELECT count(*) FROM {DirectoryTable}"));
    }

    /// <summary>
    /// Registrations and unregistrations made while one is at the server go there together when it is done, a
    /// statement for many: every distinct grain gets its own activation, a grain registered twice in one batch keeps
    /// the first and both callers are told it, and only the entries named are removed. The table is held locked so
    /// that the first statement stays in flight while the rest are made, however slow the machine.
    /// </summary>
    [Fact]
    public async Task Writes_made_at_once_share_statements()
    {
        const int Grains = 64;
        var directory = NewDirectory();
        var other = NewDirectory();
        await WarmUpAsync([directory], 1);
        var before = directory.WriteStatements;

        var distinct = Enumerable.Range(0, Grains).Select(i => new GrainAddress(GrainId.Create(TestGrain, "many-" + i), Silo(21000), new ActivationId(i + 1))).ToList();
        var contended = GrainId.Create(TestGrain, "twice");
        var twice = new[] { new GrainAddress(contended, Silo(21001), new ActivationId(500)), new GrainAddress(contended, Silo(21002), new ActivationId(501)) };
        List<Task<GrainAddress>> registering;
        await using (await HoldTableAsync(_connectionString, DirectoryTable))
        {
            registering = [.. distinct.Concat(twice).Select(address => directory.Register(address, _ => false).AsTask())];
        }

        var results = await Task.WhenAll(registering);
        Assert.Equal(distinct, results[..Grains]);
        Assert.Contains(results[Grains], twice);
        Assert.Equal(results[Grains], results[Grains + 1]);
        Assert.Equal(results[Grains], await other.Lookup(contended));
        var registrations = directory.WriteStatements - before;
        Assert.True(registrations <= 2, $"{Grains + 2} registrations made while one was in flight took {registrations} statements");

        // Unregistering them all at once, the contended grain by its losing activation: that entry stays.
        List<Task> removing;
        await using (await HoldTableAsync(_connectionString, DirectoryTable))
        {
            removing = [.. distinct.Append(twice.Single(a => a != results[Grains])).Select(address => directory.Unregister(address).AsTask())];
        }

        await Task.WhenAll(removing);
        var unregistrations = directory.WriteStatements - before - registrations;
        Assert.True(unregistrations <= 2, $"{Grains + 1} unregistrations made while one was in flight took {unregistrations} statements");
        Assert.Equal(["1"], await QueryAsync(_connectionString, $"SELECT count(*) FROM {DirectoryTable}"));
        Assert.Null(await other.Lookup(distinct[7].GrainId));
    }

    /// <summary>
    /// Lookups of one grain made while one is in flight take its answer: a burst of first calls to one grain asks the
    /// server once, and every caller gets the registered activation.
    /// </summary>
    [Fact]
    public async Task Lookups_of_one_grain_at_once_share_a_query()
    {
        const int Lookups = 64;
        var directory = NewDirectory();
        var hot = new GrainAddress(GrainId.Create(TestGrain, "hot"), Silo(22000), new ActivationId(7));
        Assert.Equal(hot, await NewDirectory().Register(hot, _ => false));
        await WarmUpAsync([directory], 1);
        var before = directory.LookupQueries;

        List<Task<GrainAddress?>> lookups;
        await using (await HoldTableAsync(_connectionString, DirectoryTable))
        {
            lookups = [.. Enumerable.Range(0, Lookups).Select(_ => directory.Lookup(hot.GrainId).AsTask())];
        }

        Assert.All(await Task.WhenAll(lookups), address => Assert.Equal(hot, address));
        var queries = directory.LookupQueries - before;
        Assert.True(queries == 1, $"{Lookups} lookups of one grain made while one was in flight took {queries} queries");

        // Once answered, a lookup asks again (no stale answer is kept).
        await NewDirectory().Unregister(hot);
        Assert.Null(await directory.Lookup(hot.GrainId));
    }

    /// <summary>
    /// Lookups of different grains made while one is in flight go to the server together: a silo taking over a dead
    /// one's sessions looks them all up in a query or two instead of taking (and the pool opening) a connection each.
    /// Each caller gets its own grain's entry, or none.
    /// </summary>
    [Fact]
    public async Task Lookups_of_many_grains_at_once_share_queries()
    {
        const int Grains = 64;
        var directory = NewDirectory();
        var addresses = Enumerable.Range(0, Grains).Select(i => new GrainAddress(GrainId.Create(TestGrain, "looked-" + i), Silo(23000 + i % 3), new ActivationId(100 + i))).ToList();
        var registrar = NewDirectory();
        foreach (var address in addresses.Where((_, i) => i % 2 == 0))
        {
            Assert.Equal(address, await registrar.Register(address, _ => false));
        }

        await WarmUpAsync([directory], 1);
        var before = directory.LookupQueries;
        List<Task<GrainAddress?>> lookups;
        await using (await HoldTableAsync(_connectionString, DirectoryTable))
        {
            lookups = [.. addresses.Select(address => directory.Lookup(address.GrainId).AsTask())];
        }

        var found = await Task.WhenAll(lookups);
        Assert.Equal(addresses.Select((a, i) => i % 2 == 0 ? a : null), found);
        var queries = directory.LookupQueries - before;
        Assert.True(queries <= 2, $"{Grains} lookups of different grains made while one was in flight took {queries} queries");
    }

    /// <summary>
    /// A burst of concurrent lookups (a thousand first calls at once) succeeds without opening a connection per
    /// lookup: the providers of a process share one pool of at most DefaultMaxPoolSize connections, and the connections
    /// the burst opened are closed once idle for DefaultIdleLifetimeSeconds (each is a server process), but one.
    /// </summary>
    [Fact]
    public async Task Lookup_burst_stays_within_the_pool_and_its_connections_close_when_idle()
    {
        var directories = Enumerable.Range(0, 3).Select(_ => NewDirectory()).ToList();
        var lookups = Enumerable.Range(0, 1_000)
            .Select(i => Task.Run(() => directories[i % 3].Lookup(GrainId.Create(TestGrain, "burst-" + i)).AsTask()))
            .ToList();
        var results = await Task.WhenAll(lookups);
        Assert.All(results, Assert.Null);

        var database = new Npgsql.NpgsqlConnectionStringBuilder(_connectionString).Database;
        var open = int.Parse((await QueryAsync(_connectionString, $"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"))[0],
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(open, 1, PostgreSqlDatabase.DefaultMaxPoolSize + 1);

        // The count includes the connection that asks. Nothing announces a pruned connection: the server is asked.
        var burst = open;
        Assert.True(burst > 3, $"the burst opened only {burst - 1} pooled connections: it proves nothing about pruning");
        var patience = TimeSpan.FromSeconds(PostgreSqlDatabase.DefaultIdleLifetimeSeconds * 3);
        var started = DateTime.UtcNow;
        while (open > 2)
        {
            Assert.True(DateTime.UtcNow - started < patience, $"{open} connections were still open {patience.TotalSeconds:0} s after a burst that opened {burst}");
            await Task.Delay(TimeSpan.FromMilliseconds(250), TestContext.Current.CancellationToken);
            open = int.Parse((await QueryAsync(_connectionString, $"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"))[0],
                System.Globalization.CultureInfo.InvariantCulture);
        }

        // The pool keeps DefaultMinPoolSize (one) for the periodic work that would otherwise reconnect every few seconds.
        Assert.Equal(1 + PostgreSqlDatabase.DefaultMinPoolSize, open);
    }

    /// <summary>An entry on a dead silo is replaced by a new registration; an entry on a live silo is kept and returned.</summary>
    [Fact]
    public async Task Dead_silos_entry_is_replaced_and_live_one_is_kept()
    {
        var directory = NewDirectory();
        var grain = GrainId.Create(TestGrain, "g");
        var first = new GrainAddress(grain, Silo(20000), new ActivationId(1));
        var second = new GrainAddress(grain, Silo(20001), new ActivationId(2));
        Assert.Equal(first, await directory.Register(first, _ => false));

        var deadAsked = new List<SiloAddress>();
        Assert.Equal(first, await directory.Register(second, silo =>
        {
            deadAsked.Add(silo);
            return false;
        }));
        Assert.Equal([first.Silo], deadAsked);
        Assert.Equal(first, await directory.Lookup(grain));

        Assert.Equal(second, await directory.Register(second, silo => silo.Equals(first.Silo)));
        Assert.Equal(second, await directory.Lookup(grain));
        // Registering the registered activation again returns it without asking about its silo.
        Assert.Equal(second, await directory.Register(second, _ => throw new InvalidOperationException("not asked")));
    }

    /// <summary>Concurrent registrations that all find the entry's silo dead: exactly one replaces it, all are told that one.</summary>
    [Fact]
    public async Task Concurrent_replacements_of_a_dead_entry_have_one_winner()
    {
        const int Registrations = 24;
        var directories = Enumerable.Range(0, 4).Select(_ => NewDirectory()).ToList();
        var grain = GrainId.Create(TestGrain, 7);
        var dead = new GrainAddress(grain, Silo(20000), new ActivationId(1));
        await directories[0].Register(dead, _ => false);
        var candidates = Enumerable.Range(1, Registrations).Select(i => new GrainAddress(grain, Silo(20000 + i), new ActivationId(1000 + i))).ToList();
        await WarmUpAsync(directories, Registrations);

        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var registrations = candidates.Select((address, i) => Task.Run(async () =>
        {
            await go.Task;
            return await directories[i % directories.Count].Register(address, silo => silo.Equals(dead.Silo));
        })).ToList();
        go.SetResult();
        var results = await Task.WhenAll(registrations);

        var winner = results[0];
        Assert.Contains(winner, candidates);
        Assert.All(results, r => Assert.Equal(winner, r));
        Assert.Equal(winner, await directories[0].Lookup(grain));
    }

    /// <summary>A registration that found a dead entry does not overwrite the activation that replaced it in the meantime.</summary>
    [Fact]
    public async Task Replacement_loses_to_one_that_replaced_the_dead_entry_first()
    {
        var mine = NewDirectory();
        var theirs = NewDirectory();
        var grain = GrainId.Create(TestGrain, "raced");
        var dead = new GrainAddress(grain, Silo(20000), new ActivationId(1));
        var first = new GrainAddress(grain, Silo(20001), new ActivationId(2));
        var late = new GrainAddress(grain, Silo(20002), new ActivationId(3));
        await mine.Register(dead, _ => false);

        var raced = false;
        var result = await mine.Register(late, silo =>
        {
            if (!raced)
            {
                // Between this registration's look-up and its replacement, another process replaces the dead entry.
                raced = true;
                Assert.Equal(first, theirs.Register(first, s => s.Equals(dead.Silo)).AsTask().GetAwaiter().GetResult());
            }

            return silo.Equals(dead.Silo);
        });

        Assert.Equal(first, result);
        Assert.Equal(first, await mine.Lookup(grain));
    }

    /// <summary>Unregister removes the entry only when both silo and activation id match.</summary>
    [Fact]
    public async Task Unregister_needs_the_same_silo_and_activation()
    {
        var directory = NewDirectory();
        var grain = GrainId.Create(TestGrain, Guid.NewGuid());
        var address = new GrainAddress(grain, Silo(20000), new ActivationId(5));
        await directory.Register(address, _ => false);

        await directory.Unregister(address with { ActivationId = new ActivationId(6) });
        await directory.Unregister(address with { Silo = Silo(20000, generation: 2) });
        Assert.Equal(address, await directory.Lookup(grain));

        await directory.Unregister(address);
        Assert.Null(await directory.Lookup(grain));
    }

    /// <summary>UnregisterSilos removes every entry of the named silos and nothing else, in this cluster only.</summary>
    [Fact]
    public async Task UnregisterSilos_removes_only_those_silos_entries()
    {
        var directory = NewDirectory();
        var otherCluster = NewDirectory("cluster-b");
        var silos = Enumerable.Range(0, 4).Select(i => Silo(20000 + i)).ToList();
        var addresses = Enumerable.Range(0, 12)
            .Select(i => new GrainAddress(GrainId.Create(TestGrain, "k" + i), silos[i % silos.Count], new ActivationId(i)))
            .ToList();
        foreach (var address in addresses)
        {
            await directory.Register(address, _ => false);
        }

        var elsewhere = new GrainAddress(GrainId.Create(TestGrain, "k0"), silos[0], new ActivationId(99));
        await otherCluster.Register(elsewhere, _ => false);

        await directory.UnregisterSilos([silos[0], silos[2]]);

        foreach (var address in addresses)
        {
            var expected = address.Silo.Equals(silos[0]) || address.Silo.Equals(silos[2]) ? null : address;
            Assert.Equal(expected, await directory.Lookup(address.GrainId));
        }

        Assert.Equal(elsewhere, await otherCluster.Lookup(elsewhere.GrainId));
    }

    /// <summary>Opens pooled connections first, so the registrations race each other rather than connection set-up.</summary>
    private static Task WarmUpAsync(List<PostgreSqlGrainDirectory> directories, int calls) =>
        Task.WhenAll(Enumerable.Range(0, calls).Select(i => directories[i % directories.Count].Lookup(GrainId.Create(TestGrain, "warm-up")).AsTask()));

    private PostgreSqlGrainDirectory NewDirectory(string clusterId = ClusterId)
    {
        var directory = new PostgreSqlGrainDirectory(_connectionString, clusterId, NullLogger<PostgreSqlGrainDirectory>.Instance);
        _owned.Add(directory);
        return directory;
    }
}
