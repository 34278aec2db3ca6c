using Orleans.LIFL.Streams;

namespace Orleans.LIFL.Grains.Demo;

/// <summary>The alerts of one room; the room's grain is activated by the first alert on its stream.</summary>
public interface IAlertGrain : IGrainWithStringKey
{
    Task<int> GetAlertCount();
}

/// <summary>Implicitly subscribed to every stream of the <see cref="StreamNamespace"/> namespace whose key is its own.</summary>
[ImplicitStreamSubscription(StreamNamespace)]
public sealed class AlertGrain(DemoJournal journal) : JournaledGrain(journal), IAlertGrain, IStreamSubscriptionObserver
{
    public const string StreamNamespace = "alerts";

    private int _alerts;

    public Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory)
    {
        ArgumentNullException.ThrowIfNull(handleFactory);
        return handleFactory.Create<Alert>().ResumeAsync(OnAlertAsync);
    }

    public Task<int> GetAlertCount() => Task.FromResult(_alerts);

    private Task OnAlertAsync(Alert alert, StreamSequenceToken? token)
    {
        _alerts++;
        Journal.EventReceived(GrainContext, $"{alert.Severity}: {alert.Message} (event #{token?.SequenceNumber})");
        return Task.CompletedTask;
    }
}
