using Orleans.LIFL.Grains.MoE;
using Orleans.LIFL.Grains.MoE.Model;
using Xunit;

namespace Orleans.LIFL.MoE.Tests;

/// <summary>The process-wide cache of attention sides: shared by deployments of the same weights, gone with the last of them.</summary>
public sealed class MoeModelCacheTests
{
    private static readonly MoeConfig Tiny = new() { Layers = 1, ModelDim = 16, Heads = 2, Experts = 2, TopK = 1, FeedForwardDim = 8, MaxSequence = 16 };

    // The cache is static and other tests use it too: each test has weights (a seed) and deployment names of its own.
    private static MoeDeploymentSpec SpecOfOwnWeights() => new() { Config = Tiny, Seed = (ulong)Random.Shared.NextInt64(1, long.MaxValue) };

    private static string Name(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public void Deployments_of_the_same_weights_share_a_model_until_the_last_lets_go()
    {
        var spec = SpecOfOwnWeights();
        var (a, b) = (Name("a"), Name("b"));
        var model = MoeModelCache.Get(a, spec, epoch: 0);
        Assert.Same(model, MoeModelCache.Get(b, spec, epoch: 0));
        Assert.Same(model, MoeModelCache.Get(a, spec, epoch: 0));

        Assert.Equal(0, MoeModelCache.Release(a));
        Assert.False(MoeModelCache.Holds(a));
        Assert.True(MoeModelCache.Holds(b));
        Assert.Same(model, MoeModelCache.Get(b, spec, epoch: 0));

        Assert.Equal(1, MoeModelCache.Release(b));
        Assert.False(MoeModelCache.Holds(b));
        var reloaded = MoeModelCache.Get(b, spec, epoch: 0);
        Assert.NotSame(model, reloaded);
        Assert.Equal(1, MoeModelCache.Release(b));
        Assert.Equal(0, MoeModelCache.Release(b));
    }

    [Fact]
    public void A_newer_epoch_lets_go_of_the_older_one_unless_another_deployment_holds_it()
    {
        var spec = SpecOfOwnWeights();
        var (restarted, other) = (Name("restarted"), Name("other"));
        var first = MoeModelCache.Get(restarted, spec, epoch: 0);
        Assert.Same(first, MoeModelCache.Get(other, spec, epoch: 0));

        // A restart loads the weights afresh; the other deployment keeps the model it had.
        var second = MoeModelCache.Get(restarted, spec, epoch: 1);
        Assert.NotSame(first, second);
        Assert.Same(first, MoeModelCache.Get(other, spec, epoch: 0));

        // Once the other goes too, epoch 0 is gone from the process and epoch 1 stays with its holder.
        Assert.Equal(1, MoeModelCache.Release(other));
        Assert.Same(second, MoeModelCache.Get(restarted, spec, epoch: 1));
        var third = MoeModelCache.Get(restarted, spec, epoch: 2);
        Assert.NotSame(second, third);
        Assert.Equal(1, MoeModelCache.Release(restarted));
        Assert.False(MoeModelCache.Holds(restarted));
    }

    [Fact]
    public void A_model_that_fails_to_load_is_not_kept()
    {
        var deployment = Name("missing");
        var spec = new MoeDeploymentSpec { WeightsPath = Path.Combine(Path.GetTempPath(), Name("no-such-weights") + ".safetensors") };
        Assert.ThrowsAny<IOException>(() => MoeModelCache.Get(deployment, spec, epoch: 0));
        Assert.ThrowsAny<IOException>(() => MoeModelCache.Get(deployment, spec, epoch: 0));
        Assert.Equal(0, MoeModelCache.Release(deployment));
    }
}
