using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Serialization;
using Orleans.LIFL.Streams;

namespace Orleans.LIFL.Runtime.Streams;

/// <summary>Receives stream events on a grain (as a grain extension) or on a client-side consumer (as an observer).</summary>
internal interface IStreamConsumerExtension : IGrainExtension
{
    Task DeliverItem(string provider, StreamId streamId, Guid subscriptionId, object? item, StreamSequenceToken? token);

    Task DeliverCompleted(string provider, StreamId streamId, Guid subscriptionId);
}

/// <summary>The client-side face of a stream consumer: an observer object implementing the consumer contract.</summary>
internal interface IStreamConsumerObserver : IStreamConsumerExtension, IGrainObserver;

/// <summary>One stream's explicit subscriptions, kept by a system grain so they outlive their subscribers' activations.</summary>
internal interface IPubSubRendezvousGrain : IGrainWithStringKey
{
    Task RegisterConsumer(Guid subscriptionId, GrainId consumer);

    Task UnregisterConsumer(Guid subscriptionId);

    [ReadOnly]
    Task<List<ConsumerRegistration>> GetConsumers();
}

[GenerateSerializer]
[Immutable]
internal sealed record ConsumerRegistration([property: Id(0)] Guid SubscriptionId, [property: Id(1)] GrainId Consumer);

[GenerateSerializer]
internal sealed class PubSubState
{
    [Id(0)]
    public List<ConsumerRegistration> Consumers { get; set; } = [];
}
