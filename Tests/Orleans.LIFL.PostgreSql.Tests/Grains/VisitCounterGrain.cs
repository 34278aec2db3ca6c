using Orleans.LIFL.Persistence;

namespace Orleans.LIFL.PostgreSql.Tests.Grains;

public interface IVisitCounterGrain : IGrainWithStringKey
{
    Task<int> Visit();
}

/// <summary>Counts visits in grain state kept by the PostgreSQL storage named "pg".</summary>
public sealed class VisitCounterGrain([PersistentState("visits", "pg")] IPersistentState<int> visits) : Grain, IVisitCounterGrain
{
    public async Task<int> Visit()
    {
        visits.State++;
        await visits.WriteStateAsync();
        return visits.State;
    }
}
