using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.TestingHost;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

public sealed class SmokeTests
{
    [Fact]
    public async Task EchoThroughClient()
    {
        await using var cluster = await InProcessTestCluster.StartAsync(o => o.InitialSilosCount = 1);
        var grain = cluster.Client.GetGrain<IEchoGrain>("a");
        Assert.Equal("a:hi", await grain.Echo("hi"));
    }
}
