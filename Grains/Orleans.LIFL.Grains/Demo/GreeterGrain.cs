namespace Orleans.LIFL.Grains.Demo;

/// <summary>A greeter per name: the smallest grain that shows activation on demand and idle collection.</summary>
public interface IGreeterGrain : IGrainWithStringKey
{
    /// <summary>Greets the grain's own key; says how many greetings this activation has given.</summary>
    Task<string> SayHello(string from);
}

public sealed class GreeterGrain(DemoJournal journal) : JournaledGrain(journal), IGreeterGrain
{
    // In memory only: a new activation starts counting again, which shows that the old one was collected.
    private int _greetings;

    public Task<string> SayHello(string from)
    {
        _greetings++;
        return Task.FromResult($"Hello {this.GetPrimaryKeyString()}, from {from} (greeting #{_greetings} of this activation)");
    }
}
