using System.Diagnostics;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Grains.MoE.Model;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// One per silo (pinned to the silo its key names, see <see cref="SiloPinnedPlacement"/>): loads a deployment's attention
/// side into the silo's process ahead of time, so that a session opened or resumed on the silo after a failure does
/// not wait for the weights — Tarragon's healthy attention workers already hold them.
/// </summary>
public interface IMoeSiloGrain : IGrainWithStringKey
{
    /// <summary>Loads the attention weights of <paramref name="spec"/> at <paramref name="epoch"/>; returns how long that took.</summary>
    Task<TimeSpan> Prepare(MoeDeploymentSpec spec, int epoch);
}

public static class MoeSilos
{
    public static string Key(string node, string silo) => LocalityAwarePlacement.Key(node, silo, "moe");
}

[SiloPinnedPlacement]
public sealed class MoeSiloGrain : Grain, IMoeSiloGrain
{
    public Task<TimeSpan> Prepare(MoeDeploymentSpec spec, int epoch)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var watch = Stopwatch.StartNew();
        MoeModelCache.Get(spec, epoch);
        return Task.FromResult(watch.Elapsed);
    }
}
