using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Orleans.LIFL.Benchmarks.Calls;

/// <summary>
/// The baseline of the calls benchmark: what a .NET developer writes by hand for "one object that handles its
/// messages one at a time". Each actor owns an unbounded <see cref="Channel{T}"/> read by its own async loop; a caller
/// writes a request and awaits a <see cref="TaskCompletionSource{TResult}"/> the loop completes. Continuations run
/// asynchronously so the caller's code never runs inside another actor's loop, as a careful developer would have it.
/// </summary>
public sealed class ChannelMailboxBaseline : IDisposable
{
    private readonly ConcurrentDictionary<long, MailboxActor> _actors = new();

    /// <summary>The actor with this key, created (and its loop started) on first use.</summary>
    public MailboxActor GetOrCreate(long key) =>
        _actors.TryGetValue(key, out var actor) ? actor : _actors.GetOrAdd(key, static _ => new MailboxActor());

    public int Count => _actors.Count;

    public void Dispose()
    {
        foreach (var actor in _actors.Values)
        {
            actor.Stop();
        }

        _actors.Clear();
    }
}

/// <summary>One hand-written actor: a mailbox and the loop that empties it.</summary>
public sealed class MailboxActor
{
    private readonly Channel<PingRequest> _mailbox = Channel.CreateUnbounded<PingRequest>(new UnboundedChannelOptions { SingleReader = true });
    private int _calls;

    public MailboxActor()
    {
        _ = ProcessAsync();
    }

    public int Calls => Volatile.Read(ref _calls);

    public ValueTask<int> Ping(int value)
    {
        var request = new PingRequest(value);
        if (!_mailbox.Writer.TryWrite(request))
        {
            throw new InvalidOperationException("The actor has stopped.");
        }

        return new ValueTask<int>(request.Reply.Task);
    }

    public void Stop() => _mailbox.Writer.TryComplete();

    private async Task ProcessAsync()
    {
        var reader = _mailbox.Reader;
        while (await reader.WaitToReadAsync())
        {
            while (reader.TryRead(out var request))
            {
                _calls++;
                request.Reply.SetResult(request.Value + 1);
            }
        }
    }

    private sealed class PingRequest(int value)
    {
        public int Value { get; } = value;

        public TaskCompletionSource<int> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
