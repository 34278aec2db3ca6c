using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.PostgreSql;
using Orleans.LIFL.Runtime.GrainDirectory;
using Orleans.LIFL.Runtime.MembershipService;

namespace Orleans.LIFL.Hosting;

public static class PostgreSqlHostingExtensions
{
    /// <summary>
    /// The name of the <see cref="PostgreSqlGrainStorageOptions"/> of <see cref="AddPostgreSqlBlobStorage"/>: the blob
    /// table's own name, which no grain storage is likely to be called (their options would be shared).
    /// </summary>
    public const string BlobStorageOptionsName = "lifl_blobs";

    /// <summary>
    /// Keeps the cluster's membership table (Orleans ADO.NET schema) and grain directory in PostgreSQL instead of in
    /// memory. The connection string comes from <paramref name="configure"/> or configuration "Lifl:PostgreSql"; the
    /// cluster id from ClusterOptions. The tables are created on first use.
    /// </summary>
    public static ISiloBuilder UsePostgreSqlClustering(this ISiloBuilder builder, Action<PostgreSqlClusteringOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        var options = services.AddOptions<PostgreSqlClusteringOptions>()
            .Bind(builder.Configuration.GetSection(PostgreSqlClusteringOptions.ConfigurationSection))
            .ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PostgreSqlClusteringOptions>, PostgreSqlClusteringOptionsValidator>());

        // Replaces the in-memory defaults the silo registered.
        services.RemoveAll<IMembershipTable>();
        services.RemoveAll<IGrainDirectory>();
        services.AddSingleton<IMembershipTable>(sp => new PostgreSqlMembershipTable(
            sp.GetRequiredService<IOptions<PostgreSqlClusteringOptions>>().Value.ConnectionString,
            sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ClusterId,
            sp.GetRequiredService<ILogger<PostgreSqlMembershipTable>>()));
        services.AddSingleton<IGrainDirectory>(sp => new PostgreSqlGrainDirectory(
            sp.GetRequiredService<IOptions<PostgreSqlClusteringOptions>>().Value.ConnectionString,
            sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ClusterId,
            sp.GetRequiredService<ILogger<PostgreSqlGrainDirectory>>()));
        return builder;
    }

    /// <summary>
    /// Grain state in PostgreSQL under the storage name <paramref name="name"/>, keyed by ClusterOptions.ServiceId.
    /// The connection string comes from <paramref name="configure"/> or configuration "Lifl:PostgreSql".
    /// </summary>
    public static ISiloBuilder AddPostgreSqlGrainStorage(this ISiloBuilder builder, string name, Action<PostgreSqlGrainStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var services = AddStorageOptions(builder, name, configure);
        services.AddKeyedSingleton<IGrainStorage>(name, (sp, _) => new PostgreSqlGrainStorage(
            name,
            sp.GetRequiredService<IOptionsMonitor<PostgreSqlGrainStorageOptions>>().Get(name).ConnectionString,
            sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId,
            sp.GetRequiredService<ILogger<PostgreSqlGrainStorage>>()));
        return builder;
    }

    /// <summary>
    /// Keeps large payloads (<see cref="IBlobStorage"/>) in PostgreSQL instead of where the silo keeps them by default,
    /// keyed by ClusterOptions.ServiceId. The connection string comes from <paramref name="configure"/> or configuration
    /// "Lifl:PostgreSql", as for grain storage (options name <see cref="BlobStorageOptionsName"/>).
    /// </summary>
    public static ISiloBuilder AddPostgreSqlBlobStorage(this ISiloBuilder builder, Action<PostgreSqlGrainStorageOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = AddStorageOptions(builder, BlobStorageOptionsName, configure);
        services.RemoveAll<IBlobStorage>();
        services.AddSingleton<IBlobStorage>(sp => new PostgreSqlBlobStorage(
            sp.GetRequiredService<IOptionsMonitor<PostgreSqlGrainStorageOptions>>().Get(BlobStorageOptionsName).ConnectionString,
            sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId,
            sp.GetRequiredService<ILogger<PostgreSqlBlobStorage>>()));
        return builder;
    }

    /// <summary>The storage options named <paramref name="name"/>, bound from "Lifl:PostgreSql" and checked at start-up.</summary>
    private static IServiceCollection AddStorageOptions(ISiloBuilder builder, string name, Action<PostgreSqlGrainStorageOptions>? configure)
    {
        var services = builder.Services;
        var options = services.AddOptions<PostgreSqlGrainStorageOptions>(name)
            .Bind(builder.Configuration.GetSection(PostgreSqlClusteringOptions.ConfigurationSection))
            .ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PostgreSqlGrainStorageOptions>, PostgreSqlGrainStorageOptionsValidator>());
        return services;
    }
}
