using Orleans.LIFL.Invocation;

namespace Orleans.LIFL.Runtime.Messaging;

/// <summary>Stamps calls with their deadline, in the timestamps of the runtime's <see cref="TimeProvider"/>.</summary>
internal sealed class CallTimeouts
{
    private readonly TimeProvider _time;
    private readonly long _defaultTicks;

    public CallTimeouts(TimeProvider time, TimeSpan defaultTimeout)
    {
        _time = time;
        _defaultTicks = ToTicks(time, defaultTimeout);
        SweepPeriod = TimeSpan.FromTicks(Math.Clamp(defaultTimeout.Ticks / 10, TimeSpan.FromMilliseconds(20).Ticks, TimeSpan.FromSeconds(1).Ticks));
    }

    /// <summary>How often callee queues are checked for calls whose caller has given up.</summary>
    public TimeSpan SweepPeriod { get; }

    public void Stamp(RequestBase request)
    {
        var now = _time.GetTimestamp();
        request.SentTimestamp = now;
        if (!request.Method.IsOneWay)
        {
            request.DeadlineTimestamp = now + (request.Method.ResponseTimeout is { } specific ? ToTicks(_time, specific) : _defaultTicks);
        }
    }

    public static long ToTicks(TimeProvider time, TimeSpan span) => (long)(span.TotalSeconds * time.TimestampFrequency);

    public static TimeSpan ToTimeSpan(TimeProvider time, long ticks) => TimeSpan.FromSeconds((double)ticks / time.TimestampFrequency);
}
