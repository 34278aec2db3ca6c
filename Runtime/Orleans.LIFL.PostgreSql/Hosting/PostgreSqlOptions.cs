using Microsoft.Extensions.Options;
using Npgsql;

namespace Orleans.LIFL.Hosting;

/// <summary>Where the cluster's membership table and grain directory live.</summary>
public sealed class PostgreSqlClusteringOptions
{
    /// <summary>The configuration section both PostgreSQL option classes bind from.</summary>
    public const string ConfigurationSection = "Lifl:PostgreSql";

    /// <summary>An Npgsql connection string ("Host=db;Port=5432;Username=lifl;Password=...;Database=lifl"). Required.</summary>
    public string ConnectionString { get; set; } = "";
}

/// <summary>Where one grain storage provider keeps grain state, or the blob storage its payloads.</summary>
public sealed class PostgreSqlGrainStorageOptions
{
    /// <summary>An Npgsql connection string. Required.</summary>
    public string ConnectionString { get; set; } = "";
}

/// <summary>Checks a connection string setting without ever repeating its value (it may hold a password).</summary>
internal static class ConnectionStringCheck
{
    public static string? Problem(string? connectionString, string setting)
    {
        var where = $"set it in code or in configuration '{PostgreSqlClusteringOptions.ConfigurationSection}:ConnectionString'";
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return $"{setting} must not be empty: {where}.";
        }

        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
            return null;
        }
        catch (ArgumentException error)
        {
            return $"{setting} is not a valid Npgsql connection string ({error.Message}): {where}.";
        }
    }
}

internal sealed class PostgreSqlClusteringOptionsValidator : IValidateOptions<PostgreSqlClusteringOptions>
{
    public ValidateOptionsResult Validate(string? name, PostgreSqlClusteringOptions options)
    {
        var problem = ConnectionStringCheck.Problem(options.ConnectionString, "PostgreSqlClusteringOptions.ConnectionString");
        return problem is null ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problem);
    }
}

internal sealed class PostgreSqlGrainStorageOptionsValidator : IValidateOptions<PostgreSqlGrainStorageOptions>
{
    public ValidateOptionsResult Validate(string? name, PostgreSqlGrainStorageOptions options)
    {
        var owner = name == PostgreSqlHostingExtensions.BlobStorageOptionsName ? "the blob storage" : $"grain storage '{name}'";
        var problem = ConnectionStringCheck.Problem(options.ConnectionString, $"PostgreSqlGrainStorageOptions.ConnectionString of {owner}");
        return problem is null ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problem);
    }
}
