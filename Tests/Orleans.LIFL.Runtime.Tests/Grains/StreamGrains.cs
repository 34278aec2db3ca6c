using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Orleans.LIFL.Streams;

namespace Orleans.LIFL.Runtime.Tests.Grains;

public interface IImplicitConsumerGrain : ILifecycleGrain
{
    Task<List<string>> Received();
}

/// <summary>Activated by any event on a stream in namespace "implicit-test" whose key is this grain's key.</summary>
[ImplicitStreamSubscription("implicit-test")]
public sealed class ImplicitConsumerGrain : LifecycleGrain, IImplicitConsumerGrain, IStreamSubscriptionObserver
{
    private readonly List<string> _received = [];

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory)
    {
        await handleFactory.Create<string>().ResumeAsync((item, _) =>
        {
            _received.Add(item);
            Signals.Set($"{this.GetPrimaryKeyString()}/got/{item}");
            return Task.CompletedTask;
        });
    }

    public Task<List<string>> Received() => Task.FromResult(_received);
}

public interface IExplicitConsumerGrain : ILifecycleGrain
{
    Task Subscribe();

    Task Unsubscribe();

    Task<List<string>> Received();
}

/// <summary>Subscribes explicitly to ("explicit-test", its key) and resumes its subscription when reactivated.</summary>
public sealed class ExplicitConsumerGrain : LifecycleGrain, IExplicitConsumerGrain
{
    private readonly List<string> _received = [];

    private IAsyncStream<string> Stream =>
        this.GetStreamProvider("Default").GetStream<string>(StreamId.Create("explicit-test", this.GetPrimaryKeyString()));

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await base.OnActivateAsync(cancellationToken);
        foreach (var handle in await Stream.GetAllSubscriptionHandles())
        {
            await handle.ResumeAsync(OnNext);
        }
    }

    public Task Subscribe() => Stream.SubscribeAsync(OnNext);

    public async Task Unsubscribe()
    {
        foreach (var handle in await Stream.GetAllSubscriptionHandles())
        {
            await handle.UnsubscribeAsync();
        }
    }

    private Task OnNext(string item, StreamSequenceToken? token)
    {
        if (item == "boom")
        {
            throw new InvalidOperationException("subscriber refused boom");
        }

        _received.Add(item);
        return Task.CompletedTask;
    }

    public Task<List<string>> Received() => Task.FromResult(_received);
}

public interface IProducerGrain : IGrainWithStringKey
{
    Task Produce(string streamNamespace, string streamKey, string item);
}

public sealed class ProducerGrain : Grain, IProducerGrain
{
    public Task Produce(string streamNamespace, string streamKey, string item) =>
        this.GetStreamProvider("Default").GetStream<string>(StreamId.Create(streamNamespace, streamKey)).OnNextAsync(item);
}
