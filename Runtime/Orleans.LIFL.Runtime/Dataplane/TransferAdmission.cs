using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Runtime.Dataplane;

/// <summary>
/// How many buffers streamed from other nodes are received at once. Each incoming transfer takes a buffer of its full
/// size at its first chunk, so a hundred trainers sending together would otherwise stage a hundred updates at once. A
/// connection whose next transfer finds no room stops reading (its sender's writes wait on TCP) until one completes,
/// so staged memory stays at the limit whatever the number of senders. With <see cref="NodePlaces"/> the limit holds
/// for every process of the node that shares them (its silos), not per process: a transfer also needs one of the
/// node's places, which another process may hold; then the first waiter looks again every <see cref="NodePollInterval"/>.
/// </summary>
internal sealed class TransferAdmission(int limit, NodePlaces? node = null) : IDisposable
{
    /// <summary>How often a process whose transfers wait for another process's place looks for a free one.</summary>
    public static readonly TimeSpan NodePollInterval = TimeSpan.FromMilliseconds(1);

    private readonly Lock _lock = new();
    private readonly Queue<TaskCompletionSource> _waiting = new();
    private readonly Stack<int> _places = new();
    private int _active;
    private bool _polling;
    private long _peakWaitingBytes;

    public int Limit { get; } = node is null ? limit : Math.Min(limit, node.Count);

    /// <summary>Transfers being received now.</summary>
    public int Active
    {
        get
        {
            lock (_lock)
            {
                return _active;
            }
        }
    }

    /// <summary>
    /// The most bytes a connection had read of a transfer that then waited for a place: what waiting transfers hold
    /// outside the pool, in the connection's read buffer, each.
    /// </summary>
    public long PeakWaitingBytes
    {
        get
        {
            lock (_lock)
            {
                return _peakWaitingBytes;
            }
        }
    }

    /// <summary>A connection waits for a place with <paramref name="bytes"/> of the transfer read.</summary>
    public void Waited(long bytes)
    {
        lock (_lock)
        {
            _peakWaitingBytes = Math.Max(_peakWaitingBytes, bytes);
        }
    }

    public bool TryEnter()
    {
        lock (_lock)
        {
            if (_active >= Limit)
            {
                return false;
            }

            if (node is not null)
            {
                var place = node.TryTake();
                if (place < 0)
                {
                    return false;
                }

                _places.Push(place);
            }

            _active++;
            return true;
        }
    }

    /// <summary>Completes when a transfer may be admitted (the caller then tries again: another may have taken the room).</summary>
    public Task WhenRoomAsync()
    {
        lock (_lock)
        {
            if (_active < Limit && node is null)
            {
                return Task.CompletedTask;
            }

            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting.Enqueue(waiter);
            if (_active < Limit && !_polling)
            {
                // Room here, none on the node: another process holds the places, and only it knows when it lets go.
                _polling = true;
                _ = PollNodeAsync();
            }

            return waiter.Task;
        }
    }

    public void Exit()
    {
        TaskCompletionSource? next;
        lock (_lock)
        {
            _active--;
            if (node is not null && _places.TryPop(out var place))
            {
                node.Give(place);
            }

            _waiting.TryDequeue(out next);
        }

        next?.TrySetResult();
    }

    public void Dispose() => node?.Dispose();

    /// <summary>While transfers wait and this process has room, wakes the first each time a node place is free.</summary>
    private async Task PollNodeAsync()
    {
        while (true)
        {
            await Task.Delay(NodePollInterval).ConfigureAwait(false);
            TaskCompletionSource? next = null;
            lock (_lock)
            {
                if (_waiting.Count == 0 || _active >= Limit)
                {
                    // Nobody waits, or this process's own transfers fill it: their exits wake the waiters.
                    _polling = false;
                    return;
                }

                int place;
                try
                {
                    place = node!.TryTake();
                }
                catch (ObjectDisposedException)
                {
                    // The dataplane is shutting down with its connections: nobody will be admitted any more.
                    _polling = false;
                    return;
                }

                if (place >= 0)
                {
                    node.Give(place);
                    next = _waiting.Dequeue();
                }
            }

            next?.TrySetResult();
        }
    }
}
