using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Orleans.LIFL.TestingHost;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

/// <summary>Hosting on the .NET Generic Host: the embedded silo, options validation, and a separate client host.</summary>
public sealed class HostingTests
{
    /// <summary>An embedded silo in a generic host serves grain calls through the IClusterClient in its container.</summary>
    [Fact]
    public async Task Embedded_silo_serves_calls()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.UseLiflSilo(silo => silo.Services.AddSingleton<IGreetingService, GreetingService>());
        using var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        var client = host.Services.GetRequiredService<IClusterClient>();
        Assert.Equal("hello, eve", await client.GetGrain<IDependencyGrain>("eve").Greet());
        Assert.IsType<GreetingService>(client.ServiceProvider.GetRequiredService<IGreetingService>());
        await host.StopAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>A bad setting stops the host at start-up with an error naming it.</summary>
    [Fact]
    public async Task Invalid_options_fail_start_with_the_setting_named()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.UseLiflSilo(silo => silo.Configure<GrainCollectionOptions>(o => o.CollectionAge = TimeSpan.FromSeconds(-1)));
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains("CollectionAge", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Options bind from configuration ("Lifl:Messaging:ResponseTimeout").</summary>
    [Fact]
    public void Options_bind_from_configuration()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Configuration["Lifl:Messaging:ResponseTimeout"] = "00:00:07";
        builder.UseLiflSilo();
        using var host = builder.Build();
        Assert.Equal(TimeSpan.FromSeconds(7), host.Services.GetRequiredService<IOptions<MessagingOptions>>().Value.ResponseTimeout);
    }

    /// <summary>UseLiflSilo twice on one host is refused.</summary>
    [Fact]
    public void Silo_twice_is_refused()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.UseLiflSilo();
        Assert.Throws<InvalidOperationException>(() => builder.UseLiflSilo());
    }

    /// <summary>A separate host with UseLiflClient calls grains of a cluster (here an in-process test cluster).</summary>
    [Fact]
    public async Task Client_host_calls_the_cluster()
    {
        await using var cluster = await TestClusters.StartAsync(silos: 2);
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.UseLiflClient(client => client.UseInProcessTestCluster(cluster));
        using var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        var client = host.Services.GetRequiredService<IClusterClient>();
        Assert.Equal("c:ok", await client.GetGrain<IEchoGrain>("c").Echo("ok"));
        await host.StopAsync(TestContext.Current.CancellationToken);
        await Assert.ThrowsAsync<RuntimeUnavailableException>(() => client.GetGrain<IEchoGrain>("c").Echo("closed"));
    }

    /// <summary>A client host without a connection says what is missing.</summary>
    [Fact]
    public void Client_without_connection_is_reported()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.UseLiflClient(_ => { });
        using var host = builder.Build();
        var error = Assert.Throws<InvalidOperationException>(() => host.Services.GetRequiredService<IClusterClient>());
        Assert.Contains("UseInProcessTestCluster", error.Message, StringComparison.Ordinal);
    }
}
