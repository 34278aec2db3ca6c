using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Persistence;

namespace Orleans.LIFL.Runtime.Streams;

/// <summary>Holds the explicit subscriptions of one stream, in the "PubSubStore" storage.</summary>
[GrainType("sys.pubsub")]
[Reentrant]
internal sealed class PubSubRendezvousGrain(
    [PersistentState("pubsub", PubSubRendezvousGrain.StorageName)] IPersistentState<PubSubState> state) : Grain, IPubSubRendezvousGrain
{
    public const string StorageName = "PubSubStore";

    public static string KeyOf(string provider, Orleans.LIFL.Streams.StreamId streamId) => $"{provider}/{streamId}";

    public async Task RegisterConsumer(Guid subscriptionId, GrainId consumer)
    {
        if (state.State.Consumers.Any(c => c.SubscriptionId == subscriptionId))
        {
            return;
        }

        state.State.Consumers.Add(new ConsumerRegistration(subscriptionId, consumer));
        await state.WriteStateAsync();
    }

    public async Task UnregisterConsumer(Guid subscriptionId)
    {
        if (state.State.Consumers.RemoveAll(c => c.SubscriptionId == subscriptionId) > 0)
        {
            await state.WriteStateAsync();
        }
    }

    public Task<List<ConsumerRegistration>> GetConsumers() => Task.FromResult(state.State.Consumers);
}
