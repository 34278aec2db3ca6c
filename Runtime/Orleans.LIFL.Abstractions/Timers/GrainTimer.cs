namespace Orleans.LIFL.Timers;

/// <summary>A timer that runs its callback as a turn of the grain that registered it.</summary>
public interface IGrainTimer : IDisposable
{
    /// <summary>Reschedules the timer: the next tick after <paramref name="dueTime"/>, then every <paramref name="period"/>
    /// (<see cref="Timeout.InfiniteTimeSpan"/> for a single tick).</summary>
    void Change(TimeSpan dueTime, TimeSpan period);
}

/// <summary>How a grain timer behaves.</summary>
public readonly record struct GrainTimerCreationOptions
{
    public GrainTimerCreationOptions(TimeSpan dueTime, TimeSpan period)
    {
        DueTime = dueTime;
        Period = period;
    }

    /// <summary>Time before the first tick.</summary>
    public TimeSpan DueTime { get; init; }

    /// <summary>Time from the end of one tick to the start of the next; <see cref="Timeout.InfiniteTimeSpan"/> for one tick.</summary>
    public TimeSpan Period { get; init; }

    /// <summary>When true a tick may run while a request of the grain is waiting at an await; when false (default)
    /// a tick is scheduled like a non-reentrant request.</summary>
    public bool Interleave { get; init; }

    /// <summary>When true every tick counts as activity and keeps the activation from being collected as idle.</summary>
    public bool KeepAlive { get; init; }
}
