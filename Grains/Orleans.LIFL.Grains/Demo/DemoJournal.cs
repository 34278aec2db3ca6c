using System.Threading.Channels;

namespace Orleans.LIFL.Grains.Demo;

/// <summary>What happened to a demo grain.</summary>
public enum JournalEventKind
{
    Activated,
    Deactivated,
    EventReceived,
}

/// <summary>One line of the demo journal.</summary>
/// <param name="Elapsed">Time since the journal was created (the start of the demo).</param>
/// <param name="Grain">The grain, as "type/key".</param>
/// <param name="Silo">The silo the activation lives on.</param>
/// <param name="Reason">Why the activation went away (deactivations only).</param>
public sealed record JournalEntry(
    TimeSpan Elapsed,
    JournalEventKind Kind,
    string Grain,
    string Silo,
    string Detail,
    DeactivationReasonCode? Reason = null);

/// <summary>
/// A process-wide record of the demo grains' lives, injected into their constructors. It is a feed rather than a list
/// so the program showing the demo can print each entry as it happens and wait for the ones it expects.
/// </summary>
public sealed class DemoJournal
{
    private readonly Channel<JournalEntry> _feed = Channel.CreateUnbounded<JournalEntry>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TimeProvider _time;
    private readonly long _started;

    public DemoJournal(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _started = time.GetTimestamp();
    }

    /// <summary>Every entry, in the order recorded; completes after <see cref="Complete"/>.</summary>
    public ChannelReader<JournalEntry> Feed => _feed.Reader;

    public void Activated(IGrainContext grain) =>
        Record(grain, JournalEventKind.Activated, "activated on demand");

    public void Deactivated(IGrainContext grain, DeactivationReason reason) =>
        Record(grain, JournalEventKind.Deactivated, reason.Description, reason.ReasonCode);

    public void EventReceived(IGrainContext grain, string description) =>
        Record(grain, JournalEventKind.EventReceived, description);

    /// <summary>No more entries will be recorded.</summary>
    public void Complete() => _feed.Writer.TryComplete();

    private void Record(IGrainContext grain, JournalEventKind kind, string detail, DeactivationReasonCode? reason = null)
    {
        ArgumentNullException.ThrowIfNull(grain);
        var entry = new JournalEntry(_time.GetElapsedTime(_started), kind, grain.GrainId.ToString(), grain.Silo.ToString(), detail, reason);

        // Entries recorded after Complete (a grain deactivating late) have no reader left to show them to.
        _feed.Writer.TryWrite(entry);
    }
}
