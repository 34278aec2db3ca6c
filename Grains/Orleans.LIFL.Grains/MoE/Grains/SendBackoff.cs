namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// When a sender that must not block may try again after failures: at once while nothing failed; after a failure, not
/// before <c>first</c> has passed, doubling with each further failure up to <c>most</c>; a success starts over.
/// </summary>
public sealed class SendBackoff(TimeSpan first, TimeSpan most, TimeProvider time)
{
    private long _failedAt;

    /// <summary>The wait the last failure imposed (zero after a success).</summary>
    public TimeSpan Delay { get; private set; }

    /// <summary>Whether a send may go now.</summary>
    public bool Ready => Delay == TimeSpan.Zero || time.GetElapsedTime(_failedAt) >= Delay;

    public void Failed()
    {
        Delay = Delay == TimeSpan.Zero ? first : TimeSpan.FromTicks(Math.Min(Delay.Ticks * 2, most.Ticks));
        _failedAt = time.GetTimestamp();
    }

    public void Succeeded() => Delay = TimeSpan.Zero;
}
