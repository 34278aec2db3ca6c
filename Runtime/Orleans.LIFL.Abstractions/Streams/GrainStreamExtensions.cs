using Microsoft.Extensions.DependencyInjection;

namespace Orleans.LIFL.Streams;

public static class GrainStreamExtensions
{
    /// <summary>The stream provider registered under <paramref name="name"/>.</summary>
    public static IStreamProvider GetStreamProvider(this Grain grain, string name)
    {
        ArgumentNullException.ThrowIfNull(grain);
        return GetStreamProvider(grain.GrainContext.ActivationServices, name);
    }

    /// <summary>The stream provider registered under <paramref name="name"/>.</summary>
    public static IStreamProvider GetStreamProvider(this IClusterClient client, string name)
    {
        ArgumentNullException.ThrowIfNull(client);
        return GetStreamProvider(client.ServiceProvider, name);
    }

    private static IStreamProvider GetStreamProvider(IServiceProvider services, string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return services.GetKeyedService<IStreamProvider>(name)
            ?? throw new KeyNotFoundException($"No stream provider named '{name}' is registered; add one with AddMemoryStreams(\"{name}\").");
    }
}
