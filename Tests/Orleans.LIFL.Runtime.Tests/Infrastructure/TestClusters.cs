using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Tests.Grains;
using Orleans.LIFL.TestingHost;

namespace Orleans.LIFL.Runtime.Tests.Infrastructure;

/// <summary>Starts small in-process clusters with what the test grains need.</summary>
public static class TestClusters
{
    public static Task<InProcessTestCluster> StartAsync(int silos = 1, Action<ISiloBuilder>? configure = null, TimeProvider? time = null) =>
        InProcessTestCluster.StartAsync(options =>
        {
            options.InitialSilosCount = silos;
            options.ConfigureSilo = silo =>
            {
                silo.AddMemoryGrainStorageAsDefault().AddMemoryStreams("Default");
                silo.Services.AddSingleton<IGreetingService, GreetingService>();
                if (time is not null)
                {
                    silo.Services.AddSingleton(time);
                }

                configure?.Invoke(silo);
            };
        });

    /// <summary>A unique key for one test's grains.</summary>
    public static string Key(string prefix = "") => prefix + Guid.NewGuid().ToString("N");
}
