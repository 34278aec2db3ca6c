using Microsoft.Extensions.Logging;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Runtime.Catalog;
using Orleans.LIFL.Timers;

namespace Orleans.LIFL.Runtime.Timers;

/// <summary>A timer tick as the activation sees it: a request it schedules like any other.</summary>
internal interface IGrainTimerTick
{
    bool KeepAlive { get; }

    void OnTickCompleted(Exception? error);
}

internal abstract class GrainTimerBase : IGrainTimer
{
    public abstract void Change(TimeSpan dueTime, TimeSpan period);

    public abstract void Dispose();

    /// <summary>The activation is going away: stop without touching it.</summary>
    public abstract void DisposeFromActivation();
}

/// <summary>
/// A grain timer: each tick is queued on the activation as a request (non-reentrant unless Interleave), and the next
/// tick is armed only when the previous one finished, so ticks never overlap.
/// </summary>
internal sealed partial class GrainTimer<TState> : GrainTimerBase
{
    private static readonly MethodDescriptor Exclusive = new(typeof(IGrainTimer), "Tick", "timer", InvokeMethodOptions.None, null);
    private static readonly MethodDescriptor Interleaving = new(typeof(IGrainTimer), "Tick", "timer", InvokeMethodOptions.AlwaysInterleave, null);

    private readonly ActivationData _activation;
    private readonly TimeProvider _time;
    private readonly Func<TState, CancellationToken, Task> _callback;
    private readonly TState _state;
    private readonly CancellationTokenSource _cancellation = new();
    private readonly Lock _lock = new();
    private ITimer? _timer;
    private TimeSpan _dueTime;
    private TimeSpan _period;
    private bool _disposed;

    public GrainTimer(ActivationData activation, TimeProvider time, Func<TState, CancellationToken, Task> callback, TState state, GrainTimerCreationOptions options)
    {
        Validate(options.DueTime, options.Period);
        _activation = activation;
        _time = time;
        _callback = callback;
        _state = state;
        _dueTime = options.DueTime;
        _period = options.Period;
        KeepAlive = options.KeepAlive;
        Descriptor = options.Interleave ? Interleaving : Exclusive;
    }

    public bool KeepAlive { get; }

    public MethodDescriptor Descriptor { get; }

    public void Start()
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                _timer = _time.CreateTimer(static s => ((GrainTimer<TState>)s!).OnFired(), this, _dueTime, Timeout.InfiniteTimeSpan);
            }
        }
    }

    public override void Change(TimeSpan dueTime, TimeSpan period)
    {
        Validate(dueTime, period);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _dueTime = dueTime;
            _period = period;
            _timer?.Change(dueTime, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnFired()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
        }

        var tick = new Tick(this) { TargetId = _activation.GrainId };
        if (_activation.Enqueue(tick) == EnqueueResult.Rejected)
        {
            DisposeFromActivation();
        }
    }

    private void OnTickCompleted(Exception? error)
    {
        if (error is not null && error is not OperationCanceledException)
        {
            LogTickFailed(_activation.Logger, error, _activation.GrainId);
        }

        lock (_lock)
        {
            if (!_disposed && _period != Timeout.InfiniteTimeSpan)
            {
                _timer?.Change(_period, Timeout.InfiniteTimeSpan);
            }
        }
    }

    public override void Dispose()
    {
        DisposeFromActivation();
        _activation.RemoveTimer(this);
    }

    public override void DisposeFromActivation()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _timer?.Dispose();
        }

        _cancellation.Cancel();
    }

    private static void Validate(TimeSpan dueTime, TimeSpan period)
    {
        if (dueTime < TimeSpan.Zero && dueTime != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(dueTime), dueTime, "A timer's due time must be zero or more, or infinite.");
        }

        if (period <= TimeSpan.Zero && period != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(period), period, "A timer's period must be positive, or infinite for a single tick.");
        }
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Timer callback of {GrainId} failed")]
    private static partial void LogTickFailed(ILogger logger, Exception error, GrainId grainId);

    private sealed class Tick(GrainTimer<TState> timer) : Request<Unit>, IGrainTimerTick
    {
        public override MethodDescriptor Method => timer.Descriptor;

        public bool KeepAlive => timer.KeepAlive;

        public void OnTickCompleted(Exception? error) => timer.OnTickCompleted(error);

        protected override ValueTask<Unit> InvokeInner(object target)
        {
            lock (timer._lock)
            {
                if (timer._disposed)
                {
                    return default;
                }
            }

            return FromTask(timer._callback(timer._state, timer._cancellation.Token));
        }
    }
}
