using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.TestingHost;

namespace Orleans.LIFL.Dashboard.Tests;

/// <summary>In-process clusters serving the dashboard on free ports (from every silo, or from the first only).</summary>
internal static class DashboardClusters
{
    public static string NewPoolName() => "d" + Guid.NewGuid().ToString("N")[..12];

    public static Task<InProcessTestCluster> StartAsync(int silos, string pool, bool everySilo, Action<DashboardOptions>? configure = null)
    {
        var first = true;
        return InProcessTestCluster.StartAsync(options =>
        {
            options.InitialSilosCount = silos;
            options.ConfigureSilo = silo =>
            {
                silo.AddMemoryGrainStorageAsDefault().Configure<DataplaneOptions>(d => d.PoolName = pool);
                if (everySilo || first)
                {
                    first = false;
                    silo.AddLiflDashboard(o =>
                    {
                        o.Port = 0;
                        configure?.Invoke(o);
                    });
                }
            };
        });
    }
}
