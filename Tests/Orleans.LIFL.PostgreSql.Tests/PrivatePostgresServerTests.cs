using Orleans.LIFL.PostgreSql.Development;
using Xunit;
using static Orleans.LIFL.PostgreSql.Tests.Infrastructure.TestDatabase;

namespace Orleans.LIFL.PostgreSql.Tests;

/// <summary>The private server that tests and benchmarks start for themselves.</summary>
public sealed class PrivatePostgresServerTests
{
    /// <summary>
    /// A server whose launcher is gone (here its end of the watchdog's pipe is closed, as the launcher's death would)
    /// is stopped by its watchdog: nothing is left listening.
    /// </summary>
    [Fact]
    public async Task A_private_server_stops_once_its_launcher_is_gone()
    {
        var server = await PrivatePostgresServer.StartAsync();
        try
        {
            var unpooled = server.ConnectionString + ";Pooling=false;Timeout=5";
            Assert.Equal(["1"], await QueryAsync(unpooled, "SELECT 1"));

            var watchdog = server.AbandonForTest();
            Assert.NotNull(watchdog);
            await watchdog.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
            var refused = await Assert.ThrowsAnyAsync<Exception>(() => QueryAsync(unpooled, "SELECT 1"));
            Assert.IsType<Npgsql.NpgsqlException>(refused, exactMatch: false);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
