using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Runtime;

namespace Orleans.LIFL.TestGrains.FL;

/// <summary>A grain placed by <see cref="LocalityAwarePlacement"/> that says which silo it runs on.</summary>
public interface ILocalityProbeGrain : IGrainWithStringKey
{
    Task<string> Silo();
}

[LocalityAwarePlacement]
public sealed class LocalityProbeGrain(ILocalSiloDetails silo) : Grain, ILocalityProbeGrain
{
    public Task<string> Silo() => Task.FromResult(silo.SiloAddress.ToString());
}
