using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Hosting;

namespace Orleans.LIFL.Benchmarks.Harness;

/// <summary>A cluster client in the benchmark's process, connected to one gateway of the silo processes it started.</summary>
public sealed class BenchmarkClient : IDisposable
{
    private readonly IHost _host;

    private BenchmarkClient(IHost host)
    {
        _host = host;
        Client = host.Services.GetRequiredService<IClusterClient>();
    }

    public IClusterClient Client { get; }

    /// <summary>The client process's attachment to its node's shared pool (what its calls hand buffers from).</summary>
    public SharedBufferPool Pool => _host.Services.GetRequiredService<SharedBufferPool>();

    public static async Task<BenchmarkClient> StartAsync(string gateway, string secret, string? clusterId, CancellationToken cancellationToken)
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration["Lifl:Cluster:Secret"] = secret;
        if (clusterId is not null)
        {
            builder.Configuration["Lifl:Cluster:ClusterId"] = clusterId;
        }

        builder.UseLiflClient(client => client.UseStaticGateways(gateway));
        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken);
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return new BenchmarkClient(host);
    }

    public TGrain GetGrain<TGrain>(string key)
        where TGrain : IGrainWithStringKey => Client.GetGrain<TGrain>(key);

    public TGrain GetGrain<TGrain>(long key)
        where TGrain : IGrainWithIntegerKey => Client.GetGrain<TGrain>(key);

    public void Dispose() => _host.Dispose();
}
