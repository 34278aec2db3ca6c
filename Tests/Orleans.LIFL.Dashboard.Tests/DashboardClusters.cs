using Orleans.LIFL.Hosting;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.TestingHost;

namespace Orleans.LIFL.Dashboard.Tests;

/// <summary>In-process clusters serving the dashboard on free ports (from every silo, or from the first only).</summary>
internal static class DashboardClusters
{
    /// <summary>A MoE model small enough to deploy and decode in a moment: 2 layers of 4 experts.</summary>
    public static readonly Grains.MoE.Model.MoeConfig SmallMoe = new() { Layers = 2, ModelDim = 32, Heads = 4, Experts = 4, TopK = 2, FeedForwardDim = 48, MaxSequence = 128 };

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
