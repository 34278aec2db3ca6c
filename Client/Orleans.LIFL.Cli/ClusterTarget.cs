using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Hosting;

namespace Orleans.LIFL.Cli;

/// <summary>Where a command's grains live: an embedded silo in this process, or a cluster reached through gateways.</summary>
/// <param name="Gateways">Empty: an embedded silo.</param>
internal sealed record ClusterTarget(IReadOnlyList<string> Gateways, string? ClusterId, string? Secret)
{
    /// <summary>A host that is an embedded silo (no gateways), or a client of the cluster.</summary>
    public static IHost BuildHost(ClusterTarget target, bool verbose)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning);
        if (target.Gateways.Count == 0)
        {
            builder.UseLiflSilo(silo => silo.AddMemoryGrainStorageAsDefault());
            return builder.Build();
        }

        if (target.ClusterId is { } clusterId)
        {
            builder.Configuration["Lifl:Cluster:ClusterId"] = clusterId;
        }

        var secret = target.Secret ?? Environment.GetEnvironmentVariable("LIFL_SECRET")
            ?? throw new CommandFailedException("connecting to a cluster needs its secret: set LIFL_SECRET (or --secret).");
        builder.Configuration["Lifl:Cluster:Secret"] = secret;
        builder.UseLiflClient(client => client.UseStaticGateways([.. target.Gateways]));
        return builder.Build();
    }
}
