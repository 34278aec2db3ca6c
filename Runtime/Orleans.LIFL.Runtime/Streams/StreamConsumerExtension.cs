using Orleans.LIFL.Streams;

namespace Orleans.LIFL.Runtime.Streams;

/// <summary>An observer with its item type erased, so one consumer can serve streams of any type.</summary>
internal interface IObserverAdapter
{
    Task OnNext(object? item, StreamSequenceToken? token);

    Task OnCompleted();
}

internal sealed class ObserverAdapter<T>(StreamId streamId, IAsyncObserver<T> observer) : IObserverAdapter
{
    public Task OnNext(object? item, StreamSequenceToken? token)
    {
        if (item is T typed)
        {
            return observer.OnNextAsync(typed, token);
        }

        if (item is null && default(T) is null)
        {
            return observer.OnNextAsync(default!, token);
        }

        throw new InvalidCastException(
            $"Stream {streamId} delivered a {item?.GetType().Name ?? "null"} but the subscriber's observer takes {typeof(T).Name}.");
    }

    public Task OnCompleted() => observer.OnCompletedAsync();
}

/// <summary>
/// The observers of one consumer (a grain activation or a client-side subscriber), by subscription. Events for a
/// subscription with no observer yet give a grain the chance to attach one (<see cref="IStreamSubscriptionObserver"/>).
/// </summary>
internal class StreamConsumerExtension : IStreamConsumerExtension
{
    private readonly Dictionary<Guid, IObserverAdapter> _observers = [];
    private readonly Lock _lock = new();
    private readonly IGrainContext? _context;

    public StreamConsumerExtension(IGrainContext? context)
    {
        _context = context;
    }

    public void SetObserver<T>(Guid subscriptionId, StreamId streamId, IAsyncObserver<T> observer)
    {
        lock (_lock)
        {
            _observers[subscriptionId] = new ObserverAdapter<T>(streamId, observer);
        }
    }

    public void RemoveObserver(Guid subscriptionId)
    {
        lock (_lock)
        {
            _observers.Remove(subscriptionId);
        }
    }

    public bool HasObserver(Guid subscriptionId)
    {
        lock (_lock)
        {
            return _observers.ContainsKey(subscriptionId);
        }
    }

    public async Task DeliverItem(string provider, StreamId streamId, Guid subscriptionId, object? item, StreamSequenceToken? token)
    {
        var observer = await FindObserver(provider, streamId, subscriptionId);
        await observer.OnNext(item, token);
    }

    public async Task DeliverCompleted(string provider, StreamId streamId, Guid subscriptionId)
    {
        var observer = await FindObserver(provider, streamId, subscriptionId);
        await observer.OnCompleted();
    }

    private async Task<IObserverAdapter> FindObserver(string provider, StreamId streamId, Guid subscriptionId)
    {
        if (TryGet(subscriptionId, out var observer))
        {
            return observer;
        }

        if (_context?.GrainInstance is IStreamSubscriptionObserver subscriptionObserver)
        {
            await subscriptionObserver.OnSubscribed(new HandleFactory(provider, streamId, subscriptionId, _context));
            if (TryGet(subscriptionId, out observer))
            {
                return observer;
            }
        }

        throw new InvalidOperationException(
            $"{_context?.GrainId.ToString() ?? "The subscriber"} received an event of stream {streamId} for subscription {subscriptionId} but has no observer for it: "
            + "resume the subscription in OnActivateAsync, or implement IStreamSubscriptionObserver.");
    }

    private bool TryGet(Guid subscriptionId, out IObserverAdapter observer)
    {
        lock (_lock)
        {
            return _observers.TryGetValue(subscriptionId, out observer!);
        }
    }

    private sealed class HandleFactory(string provider, StreamId streamId, Guid subscriptionId, IGrainContext context) : IStreamSubscriptionHandleFactory
    {
        public StreamId StreamId => streamId;

        public string ProviderName => provider;

        public Guid SubscriptionId => subscriptionId;

        public StreamSubscriptionHandle<T> Create<T>() =>
            new StreamSubscriptionHandleImpl<T>(provider, streamId, subscriptionId, context.GrainId, context.GrainFactory, context);
    }
}

/// <summary>The consumer object behind a subscription made by code that is not a grain.</summary>
internal sealed class ClientStreamConsumer() : StreamConsumerExtension(null), IStreamConsumerObserver;
