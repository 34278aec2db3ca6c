using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Silo;
using Orleans.LIFL.TestGrains;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;

[assembly: AssemblyFixture(typeof(PostgresServer))]

namespace Orleans.LIFL.Cluster.Tests;

/// <summary>
/// Silo processes (lifl silo) on loopback sharing a fresh PostgreSQL database, with the test grains loaded, and
/// clients connected to them over TCP. Everything is killed and dropped on dispose.
/// </summary>
public sealed class ProcessCluster : IAsyncDisposable
{
    public const string Secret = "cluster-tests-secret-0123456789";

    /// <summary>How long the tests wait for what the cluster does by itself (joining, detecting a death).</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(45);

    private readonly List<SiloProcess> _silos = [];
    private readonly List<IHost> _clients = [];
    private readonly SiloProcessOptions _options;

    private ProcessCluster(string connectionString, string clusterId)
    {
        ConnectionString = connectionString;
        ClusterId = clusterId;
        _options = new SiloProcessOptions
        {
            LiflProgram = SiloProcess.LocateLiflProgram(),
            Secret = Secret,
            PostgresConnectionString = connectionString,
            ClusterId = clusterId,
            ExtraArguments = ["--grains", typeof(ICounterGrain).Assembly.Location],
        };
    }

    public string ConnectionString { get; }

    public string ClusterId { get; }

    public IReadOnlyList<SiloProcess> Silos => _silos;

    /// <param name="siloArguments">Further options of silo i (for example its node id).</param>
    /// <param name="environment">Further environment variables of every silo (settings as Lifl__Section__Key).</param>
    public static async Task<ProcessCluster> StartAsync(
        PostgresServer server, int silos, Func<int, IReadOnlyList<string>>? siloArguments = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var cluster = new ProcessCluster(await server.CreateDatabaseAsync(), "c" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            // Started together: concurrent joins contend on the membership table's version row.
            var started = await Task.WhenAll(Enumerable.Range(0, silos).Select(i =>
                SiloProcess.StartAsync(
                    cluster._options with
                    {
                        Name = $"silo{i}",
                        ExtraArguments = [.. cluster._options.ExtraArguments, .. siloArguments?.Invoke(i) ?? []],
                        Environment = environment ?? cluster._options.Environment,
                    },
                    TestContext.Current.CancellationToken)));
            cluster._silos.AddRange(started.OrderBy(s => s.SiloAddress, StringComparer.Ordinal));
            await cluster.WaitForConvergenceAsync();
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }

        return cluster;
    }

    /// <summary>Waits until every silo's own view lists exactly the running silos as active.</summary>
    public async Task WaitForConvergenceAsync()
    {
        var expected = _silos.Select(s => s.SiloAddress).Order(StringComparer.Ordinal).ToList();
        foreach (var silo in _silos)
        {
            var inspector = await InspectorAsync(silo);
            var started = DateTime.UtcNow;
            List<string> seen;
            while (!(seen = await inspector.ActiveSilos()).Order(StringComparer.Ordinal).SequenceEqual(expected))
            {
                Assert.True(DateTime.UtcNow - started < Patience,
                    $"{silo.SiloAddress} still sees [{string.Join(", ", seen)}] instead of [{string.Join(", ", expected)}].");
                await Task.Delay(50, TestContext.Current.CancellationToken);
            }
        }
    }

    /// <summary>A client of this cluster connected through the given gateways.</summary>
    public async Task<IClusterClient> ConnectAsync(IEnumerable<string> gateways, string? secret = null, string? clusterId = null) =>
        (await ConnectHostAsync(gateways, secret, clusterId)).Services.GetRequiredService<IClusterClient>();

    /// <summary>A client through every silo's gateway, with its attachment to the node's shared pool (as a trainer of this node has).</summary>
    public async Task<(IClusterClient Client, SharedBufferPool Pool)> ConnectWithPoolAsync()
    {
        var host = await ConnectHostAsync(_silos.Select(s => s.Gateway));
        return (host.Services.GetRequiredService<IClusterClient>(), host.Services.GetRequiredService<SharedBufferPool>());
    }

    /// <summary>Kills every silo (SIGKILL), then starts as many new ones on the same database, and waits until they agree.</summary>
    public async Task RestartEverySiloAsync()
    {
        var count = _silos.Count;
        await Task.WhenAll(_silos.Select(s => s.KillAsync()));
        await Task.WhenAll(_silos.Select(s => s.DisposeAsync().AsTask()));
        _silos.Clear();
        var started = await Task.WhenAll(Enumerable.Range(0, count).Select(i =>
            SiloProcess.StartAsync(_options with { Name = $"silo{i}-restarted" }, TestContext.Current.CancellationToken)));
        _silos.AddRange(started.OrderBy(s => s.SiloAddress, StringComparer.Ordinal));
        await WaitForConvergenceAsync();
    }

    private async Task<IHost> ConnectHostAsync(IEnumerable<string> gateways, string? secret = null, string? clusterId = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration["Lifl:Cluster:Secret"] = secret ?? Secret;
        builder.Configuration["Lifl:Cluster:ClusterId"] = clusterId ?? ClusterId;
        builder.UseLiflClient(client => client.UseStaticGateways([.. gateways]));
        var host = builder.Build();
        try
        {
            await host.StartAsync(TestContext.Current.CancellationToken);
        }
        catch
        {
            host.Dispose();
            throw;
        }

        _clients.Add(host);
        return host;
    }

    /// <summary>The grain keyed by a silo's address and placed there (activated through that silo's own gateway).</summary>
    public async Task<TGrain> OnSiloAsync<TGrain>(SiloProcess silo)
        where TGrain : IGrainWithStringKey
    {
        var client = await ConnectAsync([silo.Gateway]);
        return client.GetGrain<TGrain>(silo.SiloAddress);
    }

    /// <summary>The inspector grain of one silo, reached through that silo's own gateway.</summary>
    public async Task<ISiloInspectorGrain> InspectorAsync(SiloProcess silo)
    {
        var client = await ConnectAsync([silo.Gateway]);
        return client.GetGrain<ISiloInspectorGrain>(silo.SiloAddress);
    }

    /// <summary>The membership table's rows: silo address to status code.</summary>
    public async Task<Dictionary<string, int>> ReadMembershipAsync()
    {
        await using var database = NpgsqlDataSource.Create(ConnectionString);
        await using var command = database.CreateCommand(
            "SELECT Address, Port, Generation, Status FROM OrleansMembershipTable WHERE DeploymentId = $1");
        command.Parameters.AddWithValue(ClusterId);
        var rows = new Dictionary<string, int>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            var address = new SiloAddress(new IPEndPoint(IPAddress.Parse(reader.GetString(0)), reader.GetInt32(1)), reader.GetInt32(2));
            rows[address.ToString()] = reader.GetInt32(3);
        }

        return rows;
    }

    /// <summary>
    /// Polls the membership table until <paramref name="condition"/> holds. The silos are other processes: the
    /// shared table is what there is to watch.
    /// </summary>
    public async Task<TimeSpan> WaitForMembershipAsync(Func<Dictionary<string, int>, bool> condition, string what)
    {
        var started = DateTime.UtcNow;
        while (true)
        {
            var rows = await ReadMembershipAsync();
            if (condition(rows))
            {
                return DateTime.UtcNow - started;
            }

            Assert.True(DateTime.UtcNow - started < Patience,
                $"Timed out waiting for {what}; the table says: {string.Join(", ", rows.Select(r => $"{r.Key}={r.Value}"))}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>The directory table's rows for one grain type: key to silo.</summary>
    public async Task<Dictionary<string, string>> ReadDirectoryAsync(string grainType)
    {
        await using var database = NpgsqlDataSource.Create(ConnectionString);
        await using var command = database.CreateCommand("SELECT grain_id, silo FROM lifl_grain_directory WHERE cluster_id = $1 AND grain_id LIKE $2");
        command.Parameters.AddWithValue(ClusterId);
        command.Parameters.AddWithValue(grainType + "/%");
        var rows = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            Assert.True(rows.TryAdd(reader.GetString(0)[(grainType.Length + 1)..], reader.GetString(1)), "a grain has two directory rows");
        }

        return rows;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        await Task.WhenAll(_silos.Select(s => s.DisposeAsync().AsTask()));
    }

    public const int Active = 3;
    public const int Dead = 6;
}
