using System.Threading.Channels;
using Orleans.LIFL.Grains.Demo;
using Spectre.Console;

namespace Orleans.LIFL.Cli.Demo;

/// <summary>Reads the demo journal in order, prints every entry, and waits for the entries a demo step expects.</summary>
internal sealed class JournalFeed(DemoJournal journal)
{
    private readonly List<JournalEntry> _seen = [];

    /// <summary>Every entry read so far.</summary>
    public IReadOnlyList<JournalEntry> Seen => _seen;

    /// <summary>Reads (and prints) entries until <paramref name="count"/> of them match; fails after <paramref name="timeout"/>.</summary>
    public async Task<IReadOnlyList<JournalEntry>> WaitForAsync(
        string what, int count, Func<JournalEntry, bool> match, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var matched = new List<JournalEntry>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            while (matched.Count < count)
            {
                var entry = await journal.Feed.ReadAsync(deadline.Token);
                Show(entry);
                if (match(entry))
                {
                    matched.Add(entry);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CommandFailedException(
                $"timed out after {timeout.TotalSeconds:0} s waiting for {what}: saw {matched.Count} of {count}.");
        }
        catch (ChannelClosedException)
        {
            throw new CommandFailedException($"the journal was closed while waiting for {what}: saw {matched.Count} of {count}.");
        }

        return matched;
    }

    /// <summary>Closes the journal and prints what is left in it.</summary>
    public async Task DrainAsync()
    {
        journal.Complete();
        await foreach (var entry in journal.Feed.ReadAllAsync())
        {
            Show(entry);
        }
    }

    private void Show(JournalEntry entry)
    {
        _seen.Add(entry);
        var what = entry.Kind switch
        {
            JournalEventKind.Activated => "[green]activated  [/]",
            JournalEventKind.Deactivated => "[yellow]deactivated[/]",
            _ => "[blue]event      [/]",
        };
        var detail = entry.Kind switch
        {
            JournalEventKind.Activated => $"on silo {entry.Silo}",
            JournalEventKind.Deactivated => $"{entry.Reason} ({entry.Detail})",
            _ => entry.Detail,
        };
        AnsiConsole.MarkupLine(
            $"  [grey]+{entry.Elapsed.TotalSeconds:0.00}s[/] {what} [bold]{Markup.Escape(entry.Grain),-14}[/] {Markup.Escape(detail)}");
    }
}
