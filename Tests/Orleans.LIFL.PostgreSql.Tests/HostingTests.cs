using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.PostgreSql.Tests.Grains;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Runtime.MembershipService;
using Orleans.LIFL.Testing.PostgreSql;
using Xunit;
using static Orleans.LIFL.PostgreSql.Tests.Infrastructure.TestDatabase;

namespace Orleans.LIFL.PostgreSql.Tests;

/// <summary>The silo builder extensions: registration, configuration, validation, and a silo running on PostgreSQL.</summary>
public sealed class HostingTests(PostgresServer server)
{
    private const string SomeConnectionString = "Host=db.example;Port=5433;Username=lifl;Password=secret;Database=lifl";

    /// <summary>UsePostgreSqlClustering replaces the in-memory membership table and directory; AddPostgreSqlGrainStorage adds a keyed storage.</summary>
    [Fact]
    public void Extensions_register_the_PostgreSql_providers()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.UseLiflSilo(silo => silo
            .UsePostgreSqlClustering(o => o.ConnectionString = SomeConnectionString)
            .AddPostgreSqlGrainStorage("pg", o => o.ConnectionString = SomeConnectionString));
        using var host = builder.Build();

        Assert.IsType<PostgreSqlMembershipTable>(host.Services.GetRequiredService<IMembershipTable>());
        Assert.IsType<PostgreSqlGrainDirectory>(host.Services.GetRequiredService<IGrainDirectory>());
        Assert.IsType<PostgreSqlGrainStorage>(host.Services.GetRequiredKeyedService<IGrainStorage>("pg"));
        Assert.Single(host.Services.GetServices<IMembershipTable>());
        Assert.Single(host.Services.GetServices<IGrainDirectory>());
    }

    /// <summary>AddPostgreSqlBlobStorage replaces whatever blob storage was registered before it, leaving one.</summary>
    [Fact]
    public void Blob_storage_replaces_the_registered_one()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.UseLiflSilo(silo =>
        {
            silo.Services.AddSingleton<IBlobStorage>(_ => throw new InvalidOperationException("The replaced blob storage was created."));
            silo.AddPostgreSqlBlobStorage(o => o.ConnectionString = SomeConnectionString);
        });
        using var host = builder.Build();

        Assert.IsType<PostgreSqlBlobStorage>(Assert.Single(host.Services.GetServices<IBlobStorage>()));
    }

    /// <summary>The blob storage is checked at start-up like grain storage, and its error says it is the blob storage's setting.</summary>
    [Fact]
    public async Task Blob_storage_without_connection_string_fails_start_naming_it()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.UseLiflSilo(silo => silo.AddPostgreSqlBlobStorage());
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));

        Assert.Equal(
            "PostgreSqlGrainStorageOptions.ConnectionString of the blob storage must not be empty: set it in code or in configuration 'Lifl:PostgreSql:ConnectionString'.",
            error.Message);
    }

    /// <summary>Both option classes bind the connection string from "Lifl:PostgreSql"; code configuration wins over it.</summary>
    [Fact]
    public void Options_bind_from_configuration()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Configuration["Lifl:PostgreSql:ConnectionString"] = SomeConnectionString;
        builder.UseLiflSilo(silo => silo
            .UsePostgreSqlClustering()
            .AddPostgreSqlGrainStorage("pg")
            .AddPostgreSqlGrainStorage("other", o => o.ConnectionString = "Host=elsewhere")
            .AddPostgreSqlBlobStorage());
        using var host = builder.Build();

        Assert.Equal(SomeConnectionString, host.Services.GetRequiredService<IOptions<PostgreSqlClusteringOptions>>().Value.ConnectionString);
        var storage = host.Services.GetRequiredService<IOptionsMonitor<PostgreSqlGrainStorageOptions>>();
        Assert.Equal(SomeConnectionString, storage.Get("pg").ConnectionString);
        Assert.Equal("Host=elsewhere", storage.Get("other").ConnectionString);
        Assert.Equal(SomeConnectionString, storage.Get(PostgreSqlHostingExtensions.BlobStorageOptionsName).ConnectionString);
    }

    /// <summary>A missing connection string stops the host at start-up with an error naming the setting.</summary>
    [Fact]
    public async Task Missing_connection_string_fails_start_naming_the_setting()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.UseLiflSilo(silo => silo.UsePostgreSqlClustering());
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));

        Assert.Equal(
            "PostgreSqlClusteringOptions.ConnectionString must not be empty: set it in code or in configuration 'Lifl:PostgreSql:ConnectionString'.",
            error.Message);
    }

    /// <summary>A malformed connection string is refused with the bad keyword named and no value repeated.</summary>
    [Fact]
    public async Task Malformed_connection_string_fails_start_without_echoing_it()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.UseLiflSilo(silo => silo.AddPostgreSqlGrainStorage("pg", o => o.ConnectionString = "Host=db;Pasword=hunter2"));
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));

        Assert.StartsWith("PostgreSqlGrainStorageOptions.ConnectionString of grain storage 'pg' is not a valid Npgsql connection string (", error.Message);
        Assert.Contains("pasword", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("hunter2", error.Message);
    }

    /// <summary>
    /// A silo on PostgreSQL: it writes its membership row (Joining, then Active; Dead when stopped), registers its
    /// activations in the directory table and keeps grain state in the state table.
    /// </summary>
    [Fact]
    public async Task Silo_keeps_membership_directory_and_state_in_PostgreSql()
    {
        var connectionString = await server.CreateDatabaseAsync();
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Configuration["Lifl:Cluster:ClusterId"] = "it-cluster";
        builder.Configuration["Lifl:Cluster:ServiceId"] = "it-service";
        builder.Configuration["Lifl:PostgreSql:ConnectionString"] = connectionString;
        builder.UseLiflSilo(silo => silo.UsePostgreSqlClustering().AddPostgreSqlGrainStorage("pg"));
        using var host = builder.Build();
        var cancellation = TestContext.Current.CancellationToken;

        await host.StartAsync(cancellation);
        var members = await QueryAsync(connectionString, "SELECT Address, Port, Generation, Status FROM OrleansMembershipTable WHERE DeploymentId = 'it-cluster'");
        var member = Assert.Single(members).Split('\t');
        Assert.Equal("3", member[3]);
        Assert.Equal(["2"], await QueryAsync(connectionString, "SELECT Version FROM OrleansMembershipVersionTable WHERE DeploymentId = 'it-cluster'"));

        var grain = host.Services.GetRequiredService<IClusterClient>().GetGrain<IVisitCounterGrain>("v");
        Assert.Equal(1, await grain.Visit());
        Assert.Equal(2, await grain.Visit());

        var registered = Assert.Single(await QueryAsync(connectionString, "SELECT grain_id, silo FROM lifl_grain_directory WHERE cluster_id = 'it-cluster'")).Split('\t');
        Assert.EndsWith("/v", registered[0]);
        Assert.Equal($"{member[0]}:{member[1]}@{member[2]}", registered[1]);
        var state = Assert.Single(await QueryAsync(connectionString, "SELECT service_id, storage_name, state_name, grain_id, version FROM lifl_grain_state"));
        Assert.Equal($"it-service\tpg\tvisits\t{registered[0]}\t2", state);

        await host.StopAsync(cancellation);
        Assert.Equal(["6"], await QueryAsync(connectionString, "SELECT Status FROM OrleansMembershipTable WHERE DeploymentId = 'it-cluster'"));
        Assert.Equal(["4"], await QueryAsync(connectionString, "SELECT Version FROM OrleansMembershipVersionTable WHERE DeploymentId = 'it-cluster'"));
    }
}
