using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Diagnostics;
using Orleans.LIFL.Runtime.Diagnostics;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>The per-method call statistics a silo keeps (the dashboard's calls, errors and latency).</summary>
public sealed class CallStatisticsTests
{
    /// <summary>Calls and errors are counted per grain method, on the silo that ran them.</summary>
    [Fact]
    public async Task Calls_and_errors_are_counted_per_method()
    {
        await using var cluster = await TestClusters.StartAsync();
        var grain = cluster.Client.GetGrain<IThrowingGrain>(TestClusters.Key());
        for (var i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<CustomGrainException>(() => grain.ThrowCustom("no"));
        }

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => grain.ThrowAfterAwait("no"));
        var snapshot = cluster.Silos[0].Services.GetRequiredService<ISiloDiagnostics>().Calls();
        var custom = Assert.Single(snapshot.Methods, m => m.Method == "IThrowingGrain.ThrowCustom");
        Assert.Equal((3, 3), (custom.Calls, custom.Errors));
        var afterAwait = Assert.Single(snapshot.Methods, m => m.Method == "IThrowingGrain.ThrowAfterAwait");
        Assert.Equal((1, 1), (afterAwait.Calls, afterAwait.Errors));
        Assert.True(snapshot.Calls >= 4 && snapshot.Errors >= 4);
        Assert.True(custom.P99Ms > 0);
    }

    /// <summary>Latency percentiles come from √2-wide buckets: a slow outlier moves the p99, not the median.</summary>
    [Fact]
    public void Percentiles_follow_the_latency_buckets()
    {
        var statistics = new GrainCallStatistics();
        var method = new Invocation.MethodDescriptor(typeof(IThrowingGrain), "Sample", "sample-method", Invocation.InvokeMethodOptions.None, null);
        var type = new GrainType("sample");
        for (var i = 0; i < 98; i++)
        {
            statistics.Record(type, method, TimeSpan.FromMicroseconds(100), failed: false);
        }

        statistics.Record(type, method, TimeSpan.FromMilliseconds(50), failed: true);
        statistics.Record(type, method, TimeSpan.FromMilliseconds(50), failed: false);
        var row = Assert.Single(statistics.Snapshot().Methods);
        Assert.Equal((100, 1), (row.Calls, row.Errors));
        Assert.InRange(row.P50Ms, 0.1, 0.1 * Math.Sqrt(2));
        Assert.InRange(row.P99Ms, 50, 50 * Math.Sqrt(2));
        Assert.Equal(0, GrainCallStatistics.Percentile(new long[64], 0.5));
    }
}
