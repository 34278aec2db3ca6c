using System.Diagnostics;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Grains.MoE.Model;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// One per silo (pinned to the silo its key names, see <see cref="SiloPinnedPlacement"/>): loads a deployment's attention
/// side into the silo's process ahead of time, so that a session opened or resumed on the silo after a failure does
/// not wait for the weights — Tarragon's healthy attention workers already hold them — nor for the decode kernels'
/// compilation (the attention side runs once here), and takes the replay path to every expert silo once, so that the
/// first replays after a failure run compiled code.
/// </summary>
public interface IMoeSiloGrain : IGrainWithStringKey
{
    /// <summary>
    /// Loads the attention weights of <paramref name="spec"/> at <paramref name="epoch"/> for <paramref name="deployment"/>
    /// (letting go of what it held of an older epoch), runs the attention side once and replays a token of zeros to each
    /// of <paramref name="replayProbes"/> (a replica on every expert silo); returns how long that took.
    /// </summary>
    Task<TimeSpan> Prepare(string deployment, MoeDeploymentSpec spec, int epoch, ExpertReplica[] replayProbes);

    /// <summary>
    /// <paramref name="deployment"/> was undeployed: lets go of its attention weights here (kept while another deployment
    /// of the same weights holds them) and, if that freed them or <paramref name="expertsUnloaded"/> (its experts here
    /// were unloaded), gives the memory back to the operating system (a full, compacting collection that decommits what
    /// is free): the process otherwise keeps it committed for later allocations. Returns the process's working set after
    /// it, in bytes.
    /// </summary>
    Task<long> Reclaim(string deployment, bool expertsUnloaded);
}

public static class MoeSilos
{
    public static string Key(string node, string silo) => LocalityAwarePlacement.Key(node, silo, "moe");
}

[SiloPinnedPlacement]
public sealed class MoeSiloGrain : Grain, IMoeSiloGrain
{
    public async Task<TimeSpan> Prepare(string deployment, MoeDeploymentSpec spec, int epoch, ExpertReplica[] replayProbes)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(replayProbes);
        var watch = Stopwatch.StartNew();
        var model = MoeModelCache.Get(deployment, spec, epoch);
        model.WarmUp();

        // The replay path is taken only when a replica fails: its first use in this process (the call's proxy, its
        // serialization, the expert silo's invoker) would otherwise be compiled then, in the failure's stall.
        var zeros = new float[model.Config.ModelDim];
        await Task.WhenAll(replayProbes.Select(r => GrainFactory.GetGrain<IExpertGrain>(r.Key).Replay(zeros)));
        return watch.Elapsed;
    }

    public Task<long> Reclaim(string deployment, bool expertsUnloaded)
    {
        ArgumentException.ThrowIfNullOrEmpty(deployment);
        if (MoeModelCache.Release(deployment) > 0 || expertsUnloaded)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }

        return Task.FromResult(Environment.WorkingSet);
    }
}
