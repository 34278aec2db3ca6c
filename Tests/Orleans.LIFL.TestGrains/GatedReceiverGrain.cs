using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.TestGrains;

/// <summary>
/// Takes shared buffers and answers each call only when the test opens its gate: the calls it holds keep whatever
/// the runtime ties to an unanswered call (an incoming transfer's admission place, for one).
/// </summary>
public interface IGatedReceiverGrain : IGrainWithStringKey
{
    /// <summary>Counts the buffer in and waits for <see cref="Open"/>; returns the buffer's length.</summary>
    Task<int> Take(SharedBuffer buffer);

    /// <summary>Completes once <paramref name="count"/> calls of <see cref="Take"/> have begun.</summary>
    Task WhenTaken(int count);

    /// <summary>How many calls of <see cref="Take"/> have begun.</summary>
    Task<int> Taken();

    /// <summary>Answers the oldest call of <see cref="Take"/> still waiting.</summary>
    Task Open();
}

[Reentrant]
public sealed class GatedReceiverGrain : Grain, IGatedReceiverGrain
{
    private readonly Queue<TaskCompletionSource> _gates = new();
    private readonly List<(int Count, TaskCompletionSource Reached)> _watchers = [];
    private int _taken;

    public async Task<int> Take(SharedBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        using (buffer)
        {
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _gates.Enqueue(gate);
            _taken++;
            foreach (var watcher in _watchers.Where(w => w.Count <= _taken).ToList())
            {
                watcher.Reached.TrySetResult();
                _watchers.Remove(watcher);
            }

            await gate.Task;
            return (int)buffer.Length;
        }
    }

    public Task WhenTaken(int count)
    {
        if (_taken >= count)
        {
            return Task.CompletedTask;
        }

        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _watchers.Add((count, reached));
        return reached.Task;
    }

    public Task<int> Taken() => Task.FromResult(_taken);

    public Task Open()
    {
        if (!_gates.TryDequeue(out var gate))
        {
            throw new InvalidOperationException("No call is waiting at the gate.");
        }

        gate.TrySetResult();
        return Task.CompletedTask;
    }
}
