namespace Orleans.LIFL.Runtime.Dataplane;

/// <summary>
/// How many buffers streamed from other nodes a process receives at once. Each incoming transfer takes a buffer of
/// its full size at its first chunk, so a hundred trainers sending together would otherwise stage a hundred updates
/// at once. A connection whose next transfer finds no room stops reading (its sender's writes wait on TCP) until one
/// completes, so staged memory stays at the limit whatever the number of senders.
/// </summary>
internal sealed class TransferAdmission(int limit)
{
    private readonly Lock _lock = new();
    private readonly Queue<TaskCompletionSource> _waiting = new();
    private int _active;

    public int Limit { get; } = limit;

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

    public bool TryEnter()
    {
        lock (_lock)
        {
            if (_active >= Limit)
            {
                return false;
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
            if (_active < Limit)
            {
                return Task.CompletedTask;
            }

            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting.Enqueue(waiter);
            return waiter.Task;
        }
    }

    public void Exit()
    {
        TaskCompletionSource? next;
        lock (_lock)
        {
            _active--;
            _waiting.TryDequeue(out next);
        }

        next?.TrySetResult();
    }
}
