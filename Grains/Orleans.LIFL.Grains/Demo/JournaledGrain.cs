namespace Orleans.LIFL.Grains.Demo;

/// <summary>A demo grain that records its activation and deactivation in the <see cref="DemoJournal"/>.</summary>
public abstract class JournaledGrain(DemoJournal journal) : Grain
{
    protected DemoJournal Journal => journal;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        journal.Activated(GrainContext);
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        journal.Deactivated(GrainContext, reason);
        return Task.CompletedTask;
    }
}
