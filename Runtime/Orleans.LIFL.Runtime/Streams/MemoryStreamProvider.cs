using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Streams;

namespace Orleans.LIFL.Runtime.Streams;

/// <summary>A stream provider configured on the silo (clients offer the same names).</summary>
internal sealed record StreamProviderRegistration(string Name);

internal static class StreamServices
{
    public static void AddCore(IServiceCollection services) =>
        services.AddSingleton(new GrainExtensionRegistration(typeof(IStreamConsumerExtension), static context => new StreamConsumerExtension(context)));

    /// <summary>The subscription id of a grain class's implicit subscription to a stream: the same in every process.</summary>
    public static Guid ImplicitSubscriptionId(GrainType grainType, StreamId streamId) =>
        new(MD5.HashData(Encoding.UTF8.GetBytes($"implicit/{grainType}/{streamId}")));

    /// <summary>The activation whose turn is running on this thread, if the caller is grain code.</summary>
    public static ActivationData? CurrentActivation() =>
        SynchronizationContext.Current is TurnContext { Scheduler: ActivationData { IsPinned: false } activation } ? activation : null;
}

/// <summary>
/// Streams whose events go straight to their subscribers as grain calls: explicit subscribers found through the
/// stream's rendezvous grain, implicit subscribers (grain classes with [ImplicitStreamSubscription]) activated on demand.
/// </summary>
internal sealed class MemoryStreamProvider(string name, IGrainFactory grainFactory, IImplicitSubscriberSource implicitSubscribers) : IStreamProvider
{
    public string Name { get; } = name;

    internal IGrainFactory GrainFactory => grainFactory;

    internal IImplicitSubscriberSource ImplicitSubscribers => implicitSubscribers;

    public IAsyncStream<T> GetStream<T>(StreamId streamId) => new MemoryStream<T>(this, streamId);

    internal IPubSubRendezvousGrain Rendezvous(StreamId streamId) =>
        grainFactory.GetGrain<IPubSubRendezvousGrain>(PubSubRendezvousGrain.KeyOf(Name, streamId));
}

internal sealed class MemoryStream<T>(MemoryStreamProvider provider, StreamId streamId) : IAsyncStream<T>
{
    private long _sequence;

    public StreamId StreamId => streamId;

    public string ProviderName => provider.Name;

    public Task OnNextAsync(T item)
    {
        var token = new StreamSequenceToken(Interlocked.Increment(ref _sequence));
        return DeliverAsync((consumer, subscription) => consumer.DeliverItem(provider.Name, streamId, subscription, item, token));
    }

    public Task OnCompletedAsync() =>
        DeliverAsync((consumer, subscription) => consumer.DeliverCompleted(provider.Name, streamId, subscription));

    private async Task DeliverAsync(Func<IStreamConsumerExtension, Guid, Task> deliver)
    {
        var deliveries = new List<Task>();
        foreach (var grainType in provider.ImplicitSubscribers.GetImplicitSubscribers(streamId.Namespace))
        {
            var consumer = provider.GrainFactory.GetGrain<IStreamConsumerExtension>(new GrainId(grainType, streamId.Key));
            deliveries.Add(deliver(consumer, StreamServices.ImplicitSubscriptionId(grainType, streamId)));
        }

        var rendezvous = provider.Rendezvous(streamId);
        foreach (var registration in await rendezvous.GetConsumers())
        {
            var consumer = provider.GrainFactory.GetGrain<IStreamConsumerExtension>(registration.Consumer);
            deliveries.Add(DeliverExplicit(rendezvous, registration, deliver(consumer, registration.SubscriptionId)));
        }

        await Task.WhenAll(deliveries);
    }

    /// <summary>A subscriber that was an observer of a client or silo that is gone is dropped, not reported.</summary>
    private static async Task DeliverExplicit(IPubSubRendezvousGrain rendezvous, ConsumerRegistration registration, Task delivery)
    {
        try
        {
            await delivery;
        }
        catch (ObserverNotFoundException)
        {
            await rendezvous.UnregisterConsumer(registration.SubscriptionId);
        }
    }

    public async Task<StreamSubscriptionHandle<T>> SubscribeAsync(IAsyncObserver<T> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        if (StreamServices.CurrentActivation() is { } activation)
        {
            var extension = (StreamConsumerExtension)activation.GetExtension<IStreamConsumerExtension>();
            if (activation.ClassInfo is { } info && info.ImplicitStreamNamespaces.Contains(streamId.Namespace) && activation.GrainId.Key == streamId.Key)
            {
                // The grain is implicitly subscribed to this stream: attach to that subscription.
                var implicitId = StreamServices.ImplicitSubscriptionId(activation.GrainId.Type, streamId);
                extension.SetObserver(implicitId, streamId, observer);
                return new StreamSubscriptionHandleImpl<T>(provider.Name, streamId, implicitId, activation.GrainId, provider.GrainFactory, activation);
            }

            var subscriptionId = Guid.NewGuid();
            extension.SetObserver(subscriptionId, streamId, observer);
            await provider.Rendezvous(streamId).RegisterConsumer(subscriptionId, activation.GrainId);
            return new StreamSubscriptionHandleImpl<T>(provider.Name, streamId, subscriptionId, activation.GrainId, provider.GrainFactory, activation);
        }
        else
        {
            var consumer = new ClientStreamConsumer();
            var subscriptionId = Guid.NewGuid();
            consumer.SetObserver(subscriptionId, streamId, observer);
            var reference = provider.GrainFactory.CreateObjectReference<IStreamConsumerObserver>(consumer);
            var consumerId = reference.GetGrainId();
            await provider.Rendezvous(streamId).RegisterConsumer(subscriptionId, consumerId);
            return new StreamSubscriptionHandleImpl<T>(provider.Name, streamId, subscriptionId, consumerId, provider.GrainFactory, null, consumer);
        }
    }

    public async Task<IList<StreamSubscriptionHandle<T>>> GetAllSubscriptionHandles()
    {
        var activation = StreamServices.CurrentActivation()
            ?? throw new InvalidOperationException("GetAllSubscriptionHandles lists a grain's own subscriptions: call it from grain code.");
        var consumers = await provider.Rendezvous(streamId).GetConsumers();
        return consumers
            .Where(c => c.Consumer == activation.GrainId)
            .Select(c => (StreamSubscriptionHandle<T>)new StreamSubscriptionHandleImpl<T>(provider.Name, streamId, c.SubscriptionId, activation.GrainId, provider.GrainFactory, activation))
            .ToList();
    }
}

internal sealed class StreamSubscriptionHandleImpl<T>(
    string provider,
    StreamId streamId,
    Guid subscriptionId,
    GrainId consumer,
    IGrainFactory grainFactory,
    IGrainContext? owner,
    ClientStreamConsumer? clientConsumer = null) : StreamSubscriptionHandle<T>
{
    public override Guid HandleId => subscriptionId;

    public override StreamId StreamId => streamId;

    public override string ProviderName => provider;

    public override async Task UnsubscribeAsync()
    {
        await grainFactory.GetGrain<IPubSubRendezvousGrain>(PubSubRendezvousGrain.KeyOf(provider, streamId)).UnregisterConsumer(subscriptionId);
        if (owner is not null)
        {
            ((StreamConsumerExtension)owner.GetExtension<IStreamConsumerExtension>()).RemoveObserver(subscriptionId);
        }
        else if (clientConsumer is not null)
        {
            clientConsumer.RemoveObserver(subscriptionId);
            grainFactory.DeleteObjectReference<IStreamConsumerObserver>(clientConsumer);
        }
    }

    public override Task<StreamSubscriptionHandle<T>> ResumeAsync(IAsyncObserver<T> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        if (clientConsumer is not null)
        {
            clientConsumer.SetObserver(subscriptionId, streamId, observer);
            return Task.FromResult<StreamSubscriptionHandle<T>>(this);
        }

        var activation = StreamServices.CurrentActivation();
        if (activation is null || activation.GrainId != consumer)
        {
            throw new InvalidOperationException($"Subscription {subscriptionId} of stream {streamId} belongs to {consumer}; resume it from that grain's own code.");
        }

        ((StreamConsumerExtension)activation.GetExtension<IStreamConsumerExtension>()).SetObserver(subscriptionId, streamId, observer);
        return Task.FromResult<StreamSubscriptionHandle<T>>(this);
    }
}
