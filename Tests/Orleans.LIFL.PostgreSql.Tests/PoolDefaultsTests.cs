using Npgsql;
using Xunit;

namespace Orleans.LIFL.PostgreSql.Tests;

/// <summary>The project's pool settings apply where the connection string gives none, under whichever of Npgsql's names.</summary>
public sealed class PoolDefaultsTests
{
    [Fact]
    public void Unset_pool_settings_take_the_project_defaults()
    {
        var settings = Apply("Host=db;Username=lifl");

        Assert.Equal(
            (PostgreSqlDatabase.DefaultMaxPoolSize, PostgreSqlDatabase.DefaultMinPoolSize, PostgreSqlDatabase.DefaultIdleLifetimeSeconds, PostgreSqlDatabase.DefaultPruningIntervalSeconds),
            (settings.MaxPoolSize, settings.MinPoolSize, settings.ConnectionIdleLifetime, settings.ConnectionPruningInterval));
    }

    /// <summary>
    /// A setting the string gives stands and leaves the others to their defaults: naming the minimum pool size does not
    /// count as naming the maximum (a substring match on "Pool Size" once took it for one).
    /// </summary>
    [Theory]
    [InlineData("Host=db;Minimum Pool Size=2", 8, 2, 10)]
    [InlineData("Host=db;MinPoolSize=12", 12, 12, 10)]
    [InlineData("Host=db;MaxPoolSize=3", 3, 1, 10)]
    [InlineData("Host=db;Maximum Pool Size=30;Connection Idle Lifetime=60", 30, 1, 60)]
    [InlineData("Host=db;ConnectionIdleLifetime=1", 8, 1, 1)]
    public void Given_settings_stand(string connectionString, int max, int min, int idle)
    {
        var settings = Apply(connectionString);

        Assert.Equal((max, min, idle), (settings.MaxPoolSize, settings.MinPoolSize, settings.ConnectionIdleLifetime));
        Assert.True(settings.ConnectionPruningInterval <= settings.ConnectionIdleLifetime);
    }

    private static NpgsqlConnectionStringBuilder Apply(string connectionString)
    {
        var settings = new NpgsqlConnectionStringBuilder(connectionString);
        PostgreSqlDatabase.ApplyPoolDefaults(settings);
        return settings;
    }
}
