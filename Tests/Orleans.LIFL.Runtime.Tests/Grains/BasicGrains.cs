using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Tests.Grains;

public interface IEchoGrain : IGrainWithStringKey
{
    Task<string> Echo(string text);

    Task<int> ActivationCount();

    Task<string> WhereAmI();
}

public sealed class EchoGrain : Grain, IEchoGrain
{
    private static int s_activations;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref s_activations);
        return Task.CompletedTask;
    }

    public Task<string> Echo(string text) => Task.FromResult($"{this.GetPrimaryKeyString()}:{text}");

    public Task<int> ActivationCount() => Task.FromResult(Volatile.Read(ref s_activations));

    public Task<string> WhereAmI() => Task.FromResult(GrainContext.Silo.ToString());
}

[GenerateSerializer]
public sealed class Payload
{
    [Id(0)]
    public List<int> Values { get; set; } = [];

    [Id(1)]
    public string Name { get; set; } = "";

    [Id(2)]
    public Payload? Child { get; set; }
}
