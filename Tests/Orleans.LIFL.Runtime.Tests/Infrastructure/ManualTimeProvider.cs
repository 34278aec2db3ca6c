namespace Orleans.LIFL.Runtime.Tests.Infrastructure;

/// <summary>
/// A clock that moves only when a test says so. Timers created on it fire synchronously inside
/// <see cref="Advance"/>, so timer, idle-collection and timeout behaviour is tested without real waiting.
/// </summary>
public sealed class ManualTimeProvider : TimeProvider
{
    private readonly Lock _lock = new();
    private readonly List<ManualTimer> _timers = [];
    private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];
    private long _now = TimeSpan.FromDays(1).Ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp()
    {
        lock (_lock)
        {
            return _now;
        }
    }

    public override DateTimeOffset GetUtcNow() => new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(GetTimestamp());

    public int ActiveTimers
    {
        get
        {
            lock (_lock)
            {
                return ArmedLocked();
            }
        }
    }

    /// <summary>Completes once exactly <paramref name="count"/> timers are armed (a fired one-shot timer is re-armed by its owner).</summary>
    public Task WhenArmedTimers(int count)
    {
        lock (_lock)
        {
            if (ArmedLocked() == count)
            {
                return Task.CompletedTask;
            }

            var waiter = (count, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            _waiters.Add(waiter);
            return waiter.Item2.Task;
        }
    }

    private int ArmedLocked() => _timers.Count(t => !t.IsDisposed && t.DueAt != long.MaxValue);

    private void NotifyLocked()
    {
        var armed = ArmedLocked();
        foreach (var waiter in _waiters.Where(w => w.Count == armed).ToList())
        {
            _waiters.Remove(waiter);
            waiter.Done.TrySetResult();
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        lock (_lock)
        {
            _timers.Add(timer);
        }

        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves the clock forward, firing every timer that comes due on the way (in time order); returns how many fired.</summary>
    public int Advance(TimeSpan by)
    {
        long target;
        lock (_lock)
        {
            target = _now + by.Ticks;
        }

        var fired = 0;
        while (true)
        {
            ManualTimer? next;
            lock (_lock)
            {
                next = _timers.Where(t => !t.IsDisposed && t.DueAt <= target).MinBy(t => t.DueAt);
                if (next is null)
                {
                    _now = target;
                    return fired;
                }

                _now = Math.Max(_now, next.DueAt);
                next.OnFired();
            }

            next.Callback(next.State);
            fired++;
        }
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public TimerCallback Callback { get; } = callback;

        public object? State { get; } = state;

        public long DueAt { get; private set; } = long.MaxValue;

        public long Period { get; private set; }

        public bool IsDisposed { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._lock)
            {
                if (IsDisposed)
                {
                    return false;
                }

                DueAt = dueTime == Timeout.InfiniteTimeSpan ? long.MaxValue : owner._now + dueTime.Ticks;
                Period = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks;
                owner.NotifyLocked();
                return true;
            }
        }

        public void OnFired() => DueAt = Period > 0 ? DueAt + Period : long.MaxValue;

        public void Dispose()
        {
            lock (owner._lock)
            {
                IsDisposed = true;
                owner._timers.Remove(this);
                owner.NotifyLocked();
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
