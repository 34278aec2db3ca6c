namespace Orleans.LIFL.Streams;

/// <summary>A named stream provider registered on the silo or client (for example AddMemoryStreams("Default")).</summary>
public interface IStreamProvider
{
    string Name { get; }

    IAsyncStream<T> GetStream<T>(StreamId streamId);
}

/// <summary>Receives the events of a stream.</summary>
public interface IAsyncObserver<in T>
{
    Task OnNextAsync(T item, StreamSequenceToken? token = null);

    Task OnCompletedAsync();

    Task OnErrorAsync(Exception ex);
}

/// <summary>A stream: produce events on it or subscribe to it.</summary>
public interface IAsyncStream<T>
{
    StreamId StreamId { get; }

    string ProviderName { get; }

    /// <summary>Delivers the event to every subscriber (explicit and implicit) and completes when all have taken it;
    /// a subscriber's failure is reported to the producer.</summary>
    Task OnNextAsync(T item);

    /// <summary>Tells every subscriber the stream has ended.</summary>
    Task OnCompletedAsync();

    /// <summary>Subscribes explicitly. A grain's subscription survives its deactivation: the grain resumes it with
    /// <see cref="StreamSubscriptionHandle{T}.ResumeAsync"/> (find it with <see cref="GetAllSubscriptionHandles"/>) or
    /// by implementing <see cref="IStreamSubscriptionObserver"/>.</summary>
    Task<StreamSubscriptionHandle<T>> SubscribeAsync(IAsyncObserver<T> observer);

    /// <summary>The caller's own explicit subscriptions to this stream.</summary>
    Task<IList<StreamSubscriptionHandle<T>>> GetAllSubscriptionHandles();
}

/// <summary>One subscription to a stream.</summary>
public abstract class StreamSubscriptionHandle<T>
{
    public abstract Guid HandleId { get; }

    public abstract StreamId StreamId { get; }

    public abstract string ProviderName { get; }

    public abstract Task UnsubscribeAsync();

    /// <summary>Attaches an observer to this subscription on the current activation (after a reactivation, or for an
    /// implicit subscription).</summary>
    public abstract Task<StreamSubscriptionHandle<T>> ResumeAsync(IAsyncObserver<T> observer);
}

/// <summary>
/// Every stream in <see cref="Namespace"/> delivers its events to the grain of this class whose key is the stream's
/// key, activating it on demand. The grain attaches its observer in <see cref="IStreamSubscriptionObserver.OnSubscribed"/>
/// or by subscribing to the stream in OnActivateAsync.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class ImplicitStreamSubscriptionAttribute : Attribute
{
    public ImplicitStreamSubscriptionAttribute(string streamNamespace)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(streamNamespace);
        Namespace = streamNamespace;
    }

    public string Namespace { get; }
}

/// <summary>Implemented by a grain that wants to be told of each subscription delivering to it for the first time
/// in this activation.</summary>
public interface IStreamSubscriptionObserver
{
    Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory);
}

/// <summary>Makes the handle of the subscription being announced, typed as the grain expects.</summary>
public interface IStreamSubscriptionHandleFactory
{
    StreamId StreamId { get; }

    string ProviderName { get; }

    Guid SubscriptionId { get; }

    StreamSubscriptionHandle<T> Create<T>();
}

public static class AsyncStreamExtensions
{
    /// <summary>Subscribes with a delegate for events (errors and completion are ignored).</summary>
    public static Task<StreamSubscriptionHandle<T>> SubscribeAsync<T>(this IAsyncStream<T> stream, Func<T, StreamSequenceToken?, Task> onNext)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return stream.SubscribeAsync(new DelegateObserver<T>(onNext));
    }

    /// <summary>Resumes with a delegate for events.</summary>
    public static Task<StreamSubscriptionHandle<T>> ResumeAsync<T>(this StreamSubscriptionHandle<T> handle, Func<T, StreamSequenceToken?, Task> onNext)
    {
        ArgumentNullException.ThrowIfNull(handle);
        return handle.ResumeAsync(new DelegateObserver<T>(onNext));
    }

    private sealed class DelegateObserver<T>(Func<T, StreamSequenceToken?, Task> onNext) : IAsyncObserver<T>
    {
        public Task OnNextAsync(T item, StreamSequenceToken? token = null) => onNext(item, token);

        public Task OnCompletedAsync() => Task.CompletedTask;

        public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
    }
}
